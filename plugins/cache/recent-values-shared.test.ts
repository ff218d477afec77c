import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { encodeEntry, RecentValues, type Entry } from './entry.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { eventually } from '../../test/stores/store-cases.ts'

// On Redis the cache keeps the values it last read, decoded (RecentValues), within 8 MiB: that was
// per route, so a top-level cache over many routes held 8 MiB for each (200 routes, 1.6 GB). One
// per store now, whatever the number of routes; and what it counts is what it holds.
const ROUTES = 24
const BODY = Buffer.alloc(800_000, 'x')
const { redis } = await redisWithClient(t)

const up = await startUpstream((req, res) => {
  req.resume()
  res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': BODY.length }).end(BODY)
})
t.teardown(() => up.close())

// A plugin that hands the test the RecentValues of store `shared` (the instance the cache uses).
const dir = mkdtempSync(join(tmpdir(), 'pc-recent-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const probe = join(dir, 'recent-probe.ts')
writeFileSync(probe, `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
import { recentValues } from ${JSON.stringify(new URL('./entry.ts', import.meta.url).href)}
export default definePlugin({ name: 'recent-probe', priority: 100, schema: Type.Object({}), setup (_c, ctx) {
  ;(globalThis as any)[Symbol.for('portcullis.test.recent')] = recentValues(ctx.store('shared'))
  return {}
} })
`)

const routes = Array.from({ length: ROUTES }, (_, i) => `  - { name: r${i}, match: { path: /r${i}/* }, upstream: up }`).join('\n')
const gw = await startGateway(`
loadPlugins: ["${probe}"]
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  shared: { type: redis, url: "${redis.url}", keyPrefix: "recent:", commandTimeout: 2s }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${routes}
plugins: { cache: { store: shared }, recent-probe: {} }
`)
t.teardown(() => gw.close())
t.ok(await storeUp(gw.adminUrl as string))
const recent = (globalThis as Record<symbol, unknown>)[Symbol.for('portcullis.test.recent')] as RecentValues

const cacheStatus = async (path: string): Promise<string> => {
  const res = await request(`${gw.url}${path}`)
  await res.body.dump()
  return String(res.headers['cache-status'])
}

t.test(`${ROUTES} routes hit with 800 KB entries: what their reads keep is bounded for the store, not per route`, async t => {
  for (let i = 0; i < ROUTES; i++) {
    t.match(await cacheStatus(`/r${i}/x`), /stored/)
    // Each read of the stored entry goes through the store's RecentValues.
    t.equal(await eventually(async () => (await cacheStatus(`/r${i}/x`)).startsWith('Portcullis; hit'), true, 30_000), true, `r${i} a hit`)
  }
  t.ok(recent.bytes > 0, 'the routes\' reads kept in the store\'s RecentValues')
  // Per route, each would keep its own entry: 18 MB in all.
  t.ok(recent.bytes <= recent.maxBytes, `within its ${recent.maxBytes} bytes (${recent.bytes})`)
})

t.test('a value read as a slice of a larger buffer (replies read together) is kept in a buffer of its own', async t => {
  const values = new RecentValues(1024 * 1024)
  const value = encodeEntry({ status: 200, headers: {}, responseTime: 0, initialAge: 0, lifetime: 60, swr: 0, sie: 0, mustRevalidate: false, variant: '', keyed: '', tags: [], body: Buffer.alloc(1000, 'b') })
  const replies = Buffer.concat([Buffer.alloc(500_000), value, Buffer.alloc(500_000)])
  const entry = values.decode('k', replies.subarray(500_000, 500_000 + value.length)) as Entry
  t.equal(entry.body.toString(), 'b'.repeat(1000))
  t.ok(entry.body.buffer.byteLength <= value.length, `its bytes hold ${entry.body.buffer.byteLength} bytes, not the million read with it`)
  t.equal(values.bytes, value.length + 1)
})
