import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { startupGate } from '../../test/reload/helpers.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// Reloads while requests are in flight: a replaced config still draining is told of the purges and
// invalidations made on the configs after it, and a route whose key settings changed drops its entries.

interface Setup {
  gw: TestGateway
  /** The origin's content: what a GET answers, read when the request arrives. */
  content: { v: string }
  /** GETs the upstream received. */
  gets: () => number
  /** Answers the GETs held (see `hold`). */
  release: () => void
  /** Puts the config with `routes` (and `extra` before them) in service; `dir`: where its relative paths lead. */
  reload: (routes: string, extra?: string, dir?: string) => Promise<void>
  get: (path: string, method?: string) => Promise<{ status: number, body: string, cacheStatus: string }>
  purge: (body: unknown) => Promise<{ status: number, body: unknown }>
}

/**
 * A gateway with `routes` before an upstream whose GETs answer the content and their URL, fresh for
 * 10 minutes, tagged `t-items`; those `hold` selects are answered on release(). A PUT changes the
 * content to v2. `extra`: more of the config, before the routes.
 */
async function setup (t: Test, routes: string, hold: (url: string, n: number) => boolean, extra = ''): Promise<Setup> {
  const content = { v: 'v1' }
  const held: Array<() => void> = []
  let gets = 0
  const up = await startUpstream((req, res: ServerResponse) => {
    req.resume()
    if (req.method === 'PUT') { content.v = 'v2'; res.writeHead(204).end(); return }
    // Computed on arrival: what a purge after it comes must not let be stored.
    const body = `${content.v} ${req.url as string}`
    const answer = () => { if (!res.destroyed) res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 't-items', 'content-length': Buffer.byteLength(body) }).end(body) }
    if (hold(req.url as string, ++gets)) held.push(answer); else answer()
  })
  t.teardown(() => up.close())
  const release = () => { for (const answer of held.splice(0)) answer() }
  t.teardown(release)
  const yaml = (r: string, extra = '') => `${extra}
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${r}`
  const gw = await startGateway(yaml(routes, extra))
  t.teardown(() => gw.close())
  return {
    gw,
    content,
    gets: () => gets,
    release,
    reload: async (r, extra, dir = '.') => { t.ok(await gw.apply(await parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${yaml(r, extra)}`, join(dir, 'test.yaml'))), 'reloaded') },
    async get (path, method = 'GET') {
      const res = await request(`${gw.url}${path}`, { method: method as 'GET' })
      return { status: res.statusCode, body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }
    },
    async purge (body) {
      const res = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return { status: res.statusCode, body: await res.body.json() }
    }
  }
}

const routes = (items: string, other = '/other') => `
  - { name: items, match: { path: /items/* }, upstream: up, plugins: ${items} }
  - { name: other, match: { path: ${other} }, upstream: up }
`

for (const way of ['url', 'prefix', 'tag', 'all', 'PUT']) {
  t.test(`a fetch begun before a reload is not stored after a ${way === 'PUT' ? 'PUT through the gateway' : `purge by ${way}`} on the config that replaced it`, async t => {
    const s = await setup(t, routes('{ cache: {} }'), (url, n) => n === 1)
    const leader = s.get('/items/slow')
    t.ok(await until(() => s.gets() === 1), 'the fetch is upstream, on the first config')
    await s.reload(routes('{ cache: {} }', '/other2'))
    s.content.v = 'v2'
    if (way === 'PUT') {
      t.equal((await s.get('/items/slow', 'PUT')).status, 204)
    } else {
      const selector = { url: { url: `${s.gw.url}/items/slow` }, prefix: { prefix: '/items/' }, tag: { tag: 't-items' }, all: { all: true } }[way]
      t.same(await s.purge(selector), { status: 200, body: { purged: 0 } })
    }
    s.release()
    t.same(await leader, { status: 200, body: 'v1 /items/slow', cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged' }, 'answered, not stored')
    t.ok(await until(() => s.gw.inFlight === 0), 'the first config has drained')
    const next = await s.get('/items/slow')
    t.same([next.body, s.gets()], ['v2 /items/slow', 2], 'the next request gets the new content')
    t.match(next.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
  })
}

t.test('a route moved to another store and back while a fetch on the first config is under way: what it brings is not stored', async t => {
  const stores = 'stores:\n  other: { type: memory }\n'
  const s = await setup(t, routes('{ cache: {} }'), (url, n) => n === 1, stores)
  const leader = s.get('/items/slow')
  t.ok(await until(() => s.gets() === 1), 'the fetch is upstream, on the first config (store memory)')
  await s.reload(routes('{ cache: { store: other } }'), stores)
  t.equal((await s.get('/items/slow', 'PUT')).status, 204, 'the origin changed, invalidated on the other store only')
  await s.reload(routes('{ cache: {} }'), stores)
  s.release()
  t.same(await leader, { status: 200, body: 'v1 /items/slow', cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged' }, 'dropped with the route\'s entries of the memory store')
  t.ok(await until(() => s.gw.inFlight === 0))
  const next = await s.get('/items/slow')
  t.same([next.body, next.cacheStatus.replace(/; ttl=\d+$/, '')], ['v2 /items/slow', 'Portcullis; fwd=uri-miss; fwd-status=200; stored'])
})

t.test('a query parameter no longer ignored: the entries stored under the old key settings are dropped', async t => {
  const s = await setup(t, routes('{ cache: { key: { query: { ignore: [lang, utm] } } } }'), () => false)
  t.match((await s.get('/items/1?id=1&lang=evil')).cacheStatus, /stored/)
  t.same([(await s.get('/items/1?id=1')).body, s.gets()], ['v1 /items/1?id=1&lang=evil', 1], 'one entry for both, as configured')
  const mark = s.gw.logs.length
  await s.reload(routes('{ cache: { key: { query: { ignore: [utm, lang] } } } }'))
  t.match((await s.get('/items/1?id=1')).cacheStatus, /^Portcullis; hit/, 'the same settings in another order: kept')
  t.same(s.gw.logs.slice(mark).filter(l => /earlier config/.test(String(l.msg))), [])
  await s.reload(routes('{ cache: {} }'))
  const after = await s.get('/items/1?id=1')
  t.same([after.body, s.gets()], ['v1 /items/1?id=1', 2], 'not the answer to lang=evil')
  t.match(after.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
  t.match(s.gw.logs.slice(mark).filter(l => /earlier config/.test(String(l.msg))), [{ level: 30, msg: 'cache entries from an earlier config dropped: they were stored under other key settings', store: 'memory', dropped: 1 }])
})

t.test('key settings changed while a fetch under the old ones is under way: what it brings is not stored', async t => {
  const s = await setup(t, routes('{ cache: { key: { query: { include: [id] } } } }'), (url, n) => n === 1)
  const leader = s.get('/items/1?id=1&lang=evil')
  t.ok(await until(() => s.gets() === 1), 'the fetch is upstream, on the first config')
  await s.reload(routes('{ cache: {} }'))
  s.release()
  t.same(await leader, { status: 200, body: 'v1 /items/1?id=1&lang=evil', cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged' })
  t.ok(await until(() => s.gw.inFlight === 0))
  const after = await s.get('/items/1?id=1')
  t.same([after.body, after.cacheStatus.replace(/; ttl=\d+$/, '')], ['v1 /items/1?id=1', 'Portcullis; fwd=uri-miss; fwd-status=200; stored'], 'not stored under id=1 by the first config')
})

t.test('key settings changed: what the replaced config fetches while the new one is built is not stored', async t => {
  const s = await setup(t, routes('{ cache: { key: { query: { include: [id] } } } }'), () => false)
  const dir = t.testdir({})
  const gate = startupGate(dir)
  // The gate, on the route after items, holds the build once the cache of items is set up.
  const reloading = s.reload(routes('{ cache: {} }').replace('upstream: up }\n', 'upstream: up, plugins: { gate: {} } }\n'), 'loadPlugins: [ ./gate.ts ]', dir)
  t.ok(await gate.reached(), 'the new config is being built')
  const before = await s.get('/items/1?id=1&lang=evil')
  t.same([before.body, before.cacheStatus], ['v1 /items/1?id=1&lang=evil', 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged'], 'answered by the config in service, not stored')
  gate.open()
  await reloading
  const after = await s.get('/items/1?id=1')
  t.same([after.body, after.cacheStatus.replace(/; ttl=\d+$/, '')], ['v1 /items/1?id=1', 'Portcullis; fwd=uri-miss; fwd-status=200; stored'])
})

t.test('a cache turned off, then on again, while a config from before still drains: what changed meanwhile is not served', async t => {
  const s = await setup(t, `${routes('{ cache: {} }')}  - { name: hold, match: { path: /hold }, upstream: up }\n`, url => url === '/hold')
  t.match((await s.get('/items/7')).cacheStatus, /stored/)
  const open = s.get('/hold')
  t.ok(await until(() => s.gets() === 2), 'a response held open on the first config')
  await s.reload(`${routes('{}')}  - { name: hold, match: { path: /hold }, upstream: up }\n`)
  t.equal((await s.get('/items/7', 'PUT')).status, 204, 'the origin changed, with no cache to invalidate')
  await s.reload(`${routes('{ cache: {} }')}  - { name: hold, match: { path: /hold }, upstream: up }\n`)
  const after = await s.get('/items/7')
  t.same([after.body, after.cacheStatus.replace(/; ttl=\d+$/, '')], ['v2 /items/7', 'Portcullis; fwd=uri-miss; fwd-status=200; stored'])
  s.release()
  await open
})
