import { request } from 'undici'
import type { RedisProcess } from './redis.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'

/** For the tests of gateways sharing one Redis cache store: an upstream that numbers its answers. */
export async function numberingUpstream (): Promise<TestUpstream & { readonly requests: () => number }> {
  let n = 0
  const up = await startUpstream((req, res) => {
    const body = `${req.url as string} #${++n}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'shared', 'content-length': Buffer.byteLength(body) }).end(body)
  })
  return Object.assign(up, { requests: () => n })
}

/**
 * One cached route on the Redis store `shared` (`plugins`: the route's, another cache config or more
 * plugins), with an admin listener (for purges and GET /stores).
 * commandTimeout 2s: the default 100 ms made a loaded machine's requests pass through uncached; a
 * killed Redis still fails at once (no offline queue).
 */
export const sharedStoreConfig = (redisUrl: string, upstreamUrl: string, keyPrefix: string, plugins = '{ cache: { store: shared } }') => `
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  shared: { type: redis, url: "${redisUrl}", keyPrefix: "${keyPrefix}", commandTimeout: 2s }
upstreams:
  up: { targets: [ { url: "${upstreamUrl}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins: ${plugins}
`

/** Whether the gateway behind `adminUrl` sees its store `shared` up, within about 10 s. */
export async function storeUp (adminUrl: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const { stores } = await (await request(`${adminUrl}/stores`)).body.json() as { stores: Array<{ name: string, state: string }> }
    if (stores.find(s => s.name === 'shared')?.state === 'up') return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}

/**
 * Waits until Redis holds a cached entry under `keyPrefix` (a key outside the tag records and
 * fetch locks). A gateway writes to the store once the body has gone out, so the client can have
 * the answer a moment before; asking the other gateway then would be a miss that fetches and
 * stores on its own.
 */
export async function entryStored (redis: RedisProcess, keyPrefix: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    const keys = (await redis.cli('KEYS', `${keyPrefix}*`)).split('\n')
    if (keys.some(k => k !== '' && !k.startsWith(`${keyPrefix}tag:{`) && !k.endsWith('#fetch'))) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('no entry reached the store within 5 s')
}
