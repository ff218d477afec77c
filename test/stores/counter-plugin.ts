import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { request } from 'undici'

const INDEX = new URL('../../src/index.ts', import.meta.url).href

/**
 * Writes `<dir>/hit-counter.ts`, a user plugin that counts the requests of its route in a store
 * (a script: INCR) and answers the count in `x-count`, or the store's error in `x-store-error`
 * (failing open: the request is served either way), and how long the store call took in `x-store-ms`.
 */
export function writeCounterPlugin (dir: string): string {
  const file = join(dir, 'hit-counter.ts')
  writeFileSync(file, `
import { definePlugin, defineScript, hashTag, StoreName, Type } from ${JSON.stringify(INDEX)}

const incr = defineScript<number>({
  name: 'hit-counter-incr',
  lua: "return redis.call('INCR', KEYS[1])",
  local (data, keys) {
    const n = Number(data.get(keys[0]) ?? 0) + 1
    data.set(keys[0], n)
    return n
  }
})

export default definePlugin({
  name: 'hit-counter',
  priority: 100,
  schema: Type.Object({ store: StoreName(), key: Type.String() }, { additionalProperties: false }),
  setup (config, ctx) {
    const store = ctx.store(config.store)
    const key = 'hits:' + hashTag(config.key)
    return {
      async onResponse (res) {
        const started = performance.now()
        try {
          res.headers['x-count'] = String(await store.run(incr, [key], []))
        } catch (err) {
          res.headers['x-store-error'] = (err as Error).message
        }
        res.headers['x-store-ms'] = String(performance.now() - started)
      }
    }
  }
})
`)
  return file
}

/** The count the plugin answers at `url` (its `x-count`). */
export async function countAt (url: string): Promise<string | string[] | undefined> {
  const res = await request(url)
  await res.body.text()
  return res.headers['x-count']
}

/** Ids of the clients connected to `raw`'s server, except `raw` itself (the gateway's connections). */
export async function otherClients (raw: Redis): Promise<string[]> {
  const own = String(await raw.client('ID'))
  const list = String(await raw.client('LIST'))
  return [...list.matchAll(/^id=(\d+) /gm)].map(m => m[1] as string).filter(id => id !== own).sort()
}
