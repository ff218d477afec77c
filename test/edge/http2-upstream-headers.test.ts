import t from 'tap'
import type { ClientHttp2Session } from 'node:http2'
import { Agent, request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { h2Request, startH2Gateway, type H2Response } from '../helpers/http2.ts'
import { until } from '../helpers/wait.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'

/**
 * Node's http2 writes some fields once only (kSingleValueHeaders: Content-Type, ETag, Date,
 * Content-Language...) and no connection-specific one (HTTP2-Settings): an HTTP/1.1 upstream may
 * send them anyway. Its writeHead throws then, inside undici's or a stream's event handler: a
 * crash would show here (`uncaught`), a hang as a request that never ends.
 */
const uncaught: unknown[] = []
const onUncaught = (err: unknown): void => { uncaught.push(err) }
process.prependListener('uncaughtException', onUncaught)
t.teardown(() => { process.removeListener('uncaughtException', onUncaught) })
t.beforeEach(() => { uncaught.length = 0 })

/** What the upstream answers on each path: fields repeated as Node's HTTP/1.1 writes arrays, one line each. */
const HEADS: Record<string, Record<string, string | string[]>> = {
  // A list by definition (RFC 9110 8.5): the same as one line with both.
  lists: { 'content-language': ['en', 'de'], 'content-encoding': ['identity', 'identity'] },
  // The same value twice is the field once; HTTP2-Settings belongs to an HTTP/1.1 Upgrade to h2c only.
  same: { 'x-content-type-options': ['nosniff', 'nosniff'], date: ['Tue, 01 Jul 2025 10:00:00 GMT', 'Tue, 01 Jul 2025 10:00:00 GMT'], 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA' },
  // One value or the other: which one the upstream meant cannot be known.
  conflict: { etag: ['"a"', '"b"'], 'content-type': ['text/plain', 'text/html'], 'access-control-allow-credentials': ['true', 'false'] }
}

/** h2Request, or status 0 for a stream not answered within 10 s (the hang this guards against; room for a loaded machine). */
async function ask (session: ClientHttp2Session, path: string): Promise<H2Response> {
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<H2Response>(resolve => { timer = setTimeout(resolve, 10_000, { status: 0, headers: {}, body: Buffer.from('{}') }) })
  const answer = h2Request(session, { ':path': path, 'accept-encoding': 'gzip' }).catch((): H2Response => ({ status: -1, headers: {}, body: Buffer.from('{}') }))
  try { return await Promise.race([answer, hung]) } finally { clearTimeout(timer) }
}

t.test('upstream fields HTTP/2 cannot carry as sent: lists joined, repeats of one value kept once, conflicting values a 502; never a crash nor a hang', async t => {
  const up = await startUpstream((req, res) => {
    const name = (req.url as string).split('/')[2] as string
    res.writeHead(200, { 'cache-control': 'max-age=60', ...HEADS[name] })
    res.end('x'.repeat(2000))
  })
  t.teardown(() => up.close())
  const { gw, ca, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: plain, match: { path: /plain/* }, upstream: up }
  - { name: gz, match: { path: /gz/* }, upstream: up, plugins: { compress: {} } }
  - { name: cached, match: { path: /cached/* }, upstream: up, plugins: { cache: {} } }
`)
  const session = await connect({ h2c: true })
  for (const route of ['plain', 'gz', 'cached']) {
    // Twice: a cached route's second request is its hit.
    for (const round of [1, 2]) {
      const at = `${route} #${round}`
      const lists = await ask(session, `/${route}/lists`)
      t.equal(lists.status, 200, `${at}: lists`)
      t.equal(lists.headers['content-language'], 'en, de', `${at}: Content-Language joined`)
      t.equal(lists.headers['content-encoding'], 'identity, identity', `${at}: Content-Encoding joined`)
      if (route === 'cached' && round === 2) t.match(lists.headers['cache-status'], /hit/, `${at}: the cache's copy, as sent`)
      const same = await ask(session, `/${route}/same`)
      t.equal(same.status, 200, `${at}: same`)
      t.equal(same.headers['x-content-type-options'], 'nosniff', at)
      t.equal(same.headers.date, 'Tue, 01 Jul 2025 10:00:00 GMT', at)
      t.equal(same.headers['http2-settings'], undefined, `${at}: HTTP2-Settings not relayed`)
      const conflict = await ask(session, `/${route}/conflict`)
      t.equal(conflict.status, 502, `${at}: conflict`)
      t.match(JSON.parse(conflict.body.toString()), { error: 'bad_gateway' }, at)
      t.equal(conflict.headers['cache-control'], undefined, `${at}: none of the upstream's fields on the gateway's answer`)
      t.equal(conflict.headers.etag, undefined, at)
    }
  }
  // HTTP/1.1 gets the same: the cache holds one response for clients of both.
  const h1 = new Agent({ connect: { ca: ca.cert } })
  t.teardown(() => h1.close())
  const lists = await request(`${gw.url}/plain/lists`, { dispatcher: h1 })
  t.equal(lists.headers['content-language'], 'en, de', 'HTTP/1.1: joined too')
  await lists.body.dump()
  const conflict = await request(`${gw.url}/plain/conflict`, { dispatcher: h1 })
  t.equal(conflict.statusCode, 502, 'HTTP/1.1: a 502 too')
  await conflict.body.dump()
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'every exchange finished')
  t.equal(gw.logs.filter(l => l.msg === 'request' && l.status === 502).length, 7, 'each 502 logged')
  t.match(gw.logs.find(l => l.msg === 'upstream request failed'), { err: { message: /repeats/ } }, 'the upstream\'s fault, logged')
  t.same(uncaught, [], 'no uncaught exception')
})

t.test('a plugin\'s field Node\'s http2 refuses: 500 plugin_error with the gateway\'s own fields only, on the head held for a body stream too', async t => {
  const dir = t.testdir({})
  // A Content-Type twice is one Node's http2 writes once only (a hop-by-hop field a plugin sets is dropped on both protocols).
  writeUserPlugin(dir, 'keepalive', 500, `{ onRequest (req) { req.extraResponseHeaders['content-type'] = ['text/plain', 'text/html'] } }`)
  writeUserPlugin(dir, 'twotypes', 500, `{ onResponse (res) { res.headers['content-type'] = ['text/plain', 'text/html'] } }`)
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' })
    res.end('x'.repeat(2000))
  })
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `loadPlugins: [ ${dir}/keepalive.ts, ${dir}/twotypes.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: extra, match: { path: /extra/* }, upstream: up, plugins: { keepalive: {} } }
  - { name: hook, match: { path: /hook/* }, upstream: up, plugins: { twotypes: {} } }
  - { name: held, match: { path: /held/* }, upstream: up, plugins: { twotypes: {}, compress: {} } }
`)
  const session = await connect({ h2c: true })
  for (const path of ['/extra/a', '/hook/a', '/held/a']) {
    const res = await ask(session, path)
    t.equal(res.status, 500, path)
    t.match(JSON.parse(res.body.toString()), { error: 'plugin_error' }, path)
    t.equal(res.headers['cache-control'], undefined, `${path}: none of the upstream's fields`)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', path)
  }
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'every exchange finished')
  t.equal(gw.logs.filter(l => l.msg === 'plugin failed').length, 3, 'each logged')
  t.equal(gw.logs.filter(l => l.msg === 'request' && l.status === 500).length, 3, 'each counted')
  t.same(uncaught, [], 'no uncaught exception')
})

t.test('a cache revalidated in the background (stale-while-revalidate) stores such fields as a client would get them, or keeps its entry', async t => {
  const answers: Record<string, number> = {}
  const up = await startUpstream((req, res) => {
    const n = answers[req.url as string] = (answers[req.url as string] ?? 0) + 1
    // Stale on arrival (Age 1, max-age 1): each hit revalidates in the background.
    const head: Record<string, string | string[]> = { 'cache-control': 'max-age=1, stale-while-revalidate=60', age: '1', etag: `"v${n}"`, 'content-language': 'en' }
    if (n > 1 && req.url === '/c/lists') head['content-language'] = ['en', 'de']
    if (n > 1 && req.url === '/c/conflict') head.etag = ['"a"', '"b"']
    res.writeHead(200, head)
    res.end(`version ${Math.min(n, 2)}`)
  })
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: cached, match: { path: /c/* }, upstream: up, plugins: { cache: {} } }
`)
  const session = await connect({ h2c: true })
  for (const path of ['/c/lists', '/c/conflict']) {
    t.equal((await ask(session, path)).status, 200, `${path}: stored`)
    t.equal((await ask(session, path)).status, 200, `${path}: stale, revalidated in the background`)
    t.ok(await until(() => (answers[path] ?? 0) >= 2), `${path}: revalidated`)
  }
  let lists = await ask(session, '/c/lists')
  for (let i = 0; i < 50 && lists.status === 200 && lists.body.toString() !== 'version 2'; i++) lists = await ask(session, '/c/lists')
  t.equal(lists.status, 200, 'the revalidated entry is served')
  t.equal(lists.body.toString(), 'version 2')
  t.equal(lists.headers['content-language'], 'en, de', 'joined as on a miss')
  const conflict = await ask(session, '/c/conflict')
  t.equal(conflict.status, 200, 'a revalidation answered with conflicting values replaced nothing')
  t.equal(conflict.body.toString(), 'version 1')
  t.same(uncaught, [], 'no uncaught exception')
})
