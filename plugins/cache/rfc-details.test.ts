import type { IncomingMessage, ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ConfigError, parseConfig } from '../../src/index.ts'
import { formatIssue } from '../../src/config/config-error.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void
interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** A real upstream running `handler` (given the count of requests so far) behind a gateway with `routes`. */
async function rig (t: Test, handler: Handler, routes: string): Promise<{ gw: TestGateway, seen: string[], send: (path: string, headers?: Record<string, string>, method?: string) => Promise<Reply> }> {
  const seen: string[] = []
  const up = await startUpstream((req, res) => {
    seen.push(`${req.method as string} ${req.url as string}`)
    req.resume()
    req.on('end', () => handler(req, res, seen.length))
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`upstreams:\n  up: { targets: [ { url: "${up.url}" } ] }\nroutes:\n${routes}`, { admin: true })
  t.teardown(() => gw.close())
  return {
    gw,
    seen,
    async send (path, headers = {}, method = 'GET') {
      const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers })
      return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
    }
  }
}

/** One route `r` for every path, with the cache configured so. */
const cached = (config: string) => `  - name: r\n    match: { path: /* }\n    upstream: up\n    plugins:\n      cache: ${config}\n`

const reply = (res: ServerResponse, status: number, headers: Record<string, string>, body = '') => {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body)
}
const cs = (h: Reply['headers']) => String(h['cache-status'])

t.test('targeted private="…" and no-cache="…" (sf-strings) withhold the fields they name, as in Cache-Control', async t => {
  const targeted: Record<string, string> = {
    '/private': 'max-age=600, private="x-user"',
    '/token': 'max-age=600, private=x-user',
    '/no-cache': 'max-age=600, no-cache="set-cookie, x-user"',
    '/inner-list': 'max-age=600, private=("x-user")'
  }
  const r = await rig(t, (req, res, n) => reply(res, 200, {
    'cache-control': 'no-store', 'cdn-cache-control': targeted[req.url as string] as string, 'x-user': `user${n}`, 'x-shared': 'yes', ...req.url === '/no-cache' ? { 'set-cookie': `s=${n}` } : {}
  }, `body ${n}`), cached('{ targetedCacheControl: [CDN-Cache-Control] }'))
  for (const path of ['/private', '/token', '/no-cache']) {
    const first = await r.send(path)
    t.equal(first.headers['x-user'], `user${r.seen.length}`, `${path}: the client that caused it gets the field`)
    const second = await r.send(path)
    t.match(cs(second.headers), /^Portcullis; hit/, `${path}: stored`)
    t.equal(second.body, first.body)
    t.same([second.headers['x-user'], second.headers['x-shared']], [undefined, 'yes'], `${path}: x-user withheld from the next client`)
  }
  t.equal((await r.send('/no-cache')).headers['set-cookie'], undefined, 'no-cache="set-cookie, …" withholds Set-Cookie, not the whole response')
  await r.send('/inner-list')
  t.notMatch(cs((await r.send('/inner-list')).headers), /hit/, 'private with a value that is no field list: the bare directive, not shared')
})

t.test('a Host with a trailing dot is the same host for keys, invalidation and URL purges', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.method === 'PUT') reply(res, 204, {})
    else reply(res, 200, { 'cache-control': 'max-age=600' }, `v${n}`)
  }, cached('{}'))
  const port = new URL(r.gw.url).port
  const plain = { host: `localhost:${port}` }
  const dotted = { host: `localhost.:${port}` }
  await r.send('/d', plain)
  t.match(cs((await r.send('/d', plain)).headers), /^Portcullis; hit/)
  t.equal((await r.send('/d', dotted, 'PUT')).status, 204)
  t.match(cs((await r.send('/d', plain)).headers), /fwd=uri-miss/, 'a PUT through Host localhost. invalidated the entry stored through localhost')

  await r.send('/e', dotted)
  t.match(cs((await r.send('/e', dotted)).headers), /^Portcullis; hit/)
  const purged = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `http://localhost:${port}/e` }) })
  t.same(await purged.body.json(), { purged: 1 })
  t.match(cs((await r.send('/e', dotted)).headers), /fwd=uri-miss/, 'the URL purge reached the entry stored through Host localhost.')
})

t.test('cache name: an RFC 8941 token, or Cache-Status would not parse', async t => {
  const check = async (name: string): Promise<string> => {
    try {
      await parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n${cached(`{ name: "${name}" }`)}`, 'c.yaml')
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(formatIssue).join('\n')
      throw err
    }
    return 'accepted'
  }
  for (const name of ['1cache', '-edge', '.c', 'a b', 'é']) t.match(await check(name), /^c\.yaml:10:\d+ routes\[0\]\.plugins\.cache\.name: must be a token/, name)
  for (const name of ['Edge-1', 'cdn.example.com', '*', 'a:b/c_d']) t.equal(await check(name), 'accepted', name)
})

t.test('If-None-Match is a list of entity-tags (a quoted comma is part of its tag); If-Modified-Since and If-Range dates are HTTP-dates', async t => {
  const lastModified = 'Sun, 06 Nov 1994 08:49:37 GMT'
  const r = await rig(t, (_req, res, n) => reply(res, 200, { 'cache-control': 'max-age=600', etag: '"a,b"', 'last-modified': lastModified }, `body ${n}`), cached('{}'))
  await r.send('/c')
  const inm = async (value: string) => (await r.send('/c', { 'if-none-match': value })).status
  t.equal(await inm('"a,b"'), 304, 'the exact tag')
  t.equal(await inm('"x", W/"a,b"'), 304, 'weakly, in a list')
  t.equal(await inm('"a", "b"'), 200, 'two other tags')
  t.equal(await inm('a,b'), 200, 'no entity-tag list')
  t.equal(await inm('"a,b" junk'), 200, 'not a list of entity-tags')

  const ims = async (value: string) => (await r.send('/c', { 'if-modified-since': value })).status
  t.equal(await ims('Mon, 01 Jun 2026 00:00:00 GMT'), 304, 'IMF-fixdate')
  t.equal(await ims('Monday, 01-Jun-26 00:00:00 GMT'), 304, 'rfc850-date')
  t.equal(await ims('Mon Jun  1 00:00:00 2026'), 304, 'asctime-date')
  t.equal(await ims('June 5 2026'), 200, 'not an HTTP-date: ignored')
  t.equal(await ims('2026-06-05T00:00:00Z'), 200, 'not an HTTP-date either')
  t.equal(await ims('Sat, 05 Nov 1994 08:49:37 GMT'), 200, 'modified since')

  const ranged = async (ifRange: string) => (await r.send('/c', { range: 'bytes=0-1', 'if-range': ifRange })).status
  t.equal(await ranged(lastModified), 206)
  t.equal(await ranged('Sun Nov  6 08:49:37 1994'), 206, 'the same date as asctime-date')
  t.equal(await ranged('November 6 1994 08:49:37 GMT'), 200, 'not an HTTP-date: the whole response')
  t.equal(r.seen.length, 1)
})

t.test('invalidation by an unsafe request needs the cache on the route the request takes', async t => {
  const routes = (writes: string) => `  - name: reads
    match: { path: /items/*, methods: [GET] }
    upstream: up
    plugins:
      cache: {}
  - name: writes
    match: { path: /items/* }
    upstream: up
${writes}`
  const handler: Handler = (req, res, n) => req.method === 'PUT' ? reply(res, 204, {}) : reply(res, 200, { 'cache-control': 'max-age=600' }, `v${n}`)
  for (const [writes, after] of [
    ['    plugins:\n      cache: { methods: [GET, HEAD] }\n', /fwd=uri-miss/],
    ['', /^Portcullis; hit/]
  ] as const) {
    const r = await rig(t, handler, routes(writes))
    await r.send('/items/1')
    const put = await r.send('/items/1', {}, 'PUT')
    t.equal(put.status, 204)
    t.match(cs((await r.send('/items/1')).headers), after, writes === '' ? 'a write route without the cache invalidates nothing' : 'the write route\'s cache, serving reads only, invalidated the read route\'s entry')
  }
})
