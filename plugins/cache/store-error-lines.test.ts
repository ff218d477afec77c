import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { storeUp } from '../../test/helpers/shared-cache-store.ts'

// Store failures are logged per store, not per route: a client spreading requests over many
// cached routes must not multiply the warn lines (one StoreErrorLog per route did).
const { redis, raw } = await redisWithClient(t)

const up = await startUpstream((req, res) => {
  res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': 2 }).end('ok')
})
t.teardown(() => up.close())

const PREFIX = 'sel:'
const routes = ['r1', 'r2', 'r3']
const gw = await startGateway(`
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  shared: { type: redis, url: "${redis.url}", keyPrefix: "${PREFIX}", commandTimeout: 2s }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${routes.map(r => `  - name: ${r}
    match: { path: /${r}/* }
    upstream: up
    plugins: { cache: { store: shared } }`).join('\n')}
`)
t.ok(await storeUp(gw.adminUrl as string))

const get = async (path: string) => {
  const res = await request(`${gw.url}${path}`, { headers: { host: 'api.example.com' } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}

/** The one key Redis holds matching `pattern` (after the prefix), once the gateway has written it. */
async function keyLike (pattern: string): Promise<string> {
  for (let i = 0; i < 250; i++) {
    const keys = await raw.keys(PREFIX + pattern)
    if (keys.length === 1) return keys[0] as string
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`no single key like ${pattern} within 5 s`)
}

t.test('unreadable entries on three routes of one store: one warn line, and every failure counted once the config goes', async t => {
  for (const r of routes) {
    await get(`/${r}/x`)
    const key = await keyLike(`c:${r}:/${r}/x?#*`)
    await raw.del(key)
    await raw.hset(key, 'other', 'writer')
  }
  for (const r of routes) t.match(await get(`/${r}/x`), { status: 200, cacheStatus: /fwd=uri-miss/ })
  const held = () => gw.logs.filter(l => String(l.msg).includes('held values the cache cannot read'))
  t.equal(held().length, 1, 'one line for the store, not one per route')
  await gw.close()
  t.equal(held().reduce((sum, l) => sum + Number(l.failures), 0), routes.length, 'the held-back failures are logged when the config goes')
})
