import t from 'tap'
import { join } from 'node:path'
import { Client, request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { until } from './helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'
import { Deadlines } from '../src/deadlines.ts'

// Each timeout's own line is awaited: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// An async request hook that never settles, on a route without timeouts.request: bounded by
// server.pluginTimeout, answered and logged as when the request timeout finds a hook running.
const dir = t.testdir({})
// /late-reject: an onResponse the test rejects once its timeout has been answered.
const late = sharedWithPlugins('late-reject', { reject: (_err: Error) => {} })
writeUserPlugin(dir, 'hang', 500, `{
  onRequest: (req) => req.path === '/hang-request' ? new Promise(() => {}) : req.path === '/quick' ? Promise.resolve() : undefined,
  onResponse: (_res, req) => req.path === '/hang-response' ? new Promise(() => {})
    : req.path === '/late-reject' ? new Promise((_resolve, reject) => { shared('late-reject').reject = reject })
    : req.path === '/quick' ? Promise.resolve() : undefined
}`)
const up = await startUpstream((_req, res) => { res.end('ok') })
t.teardown(() => up.close())
const gw = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 1s
loadPlugins: [ ./hang.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { hang: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())

// Generous: without the bound, the client's own timeout ends the request.
const get = (path: string) => request(`${gw.url}${path}`, { headersTimeout: 20_000, bodyTimeout: 20_000 })

t.test('a hook that never settles: 504 after server.pluginTimeout, logged naming the plugin and the hook, the gateway serving on', async t => {
  for (const [path, hook] of [['/hang-request', 'onRequest'], ['/hang-response', 'onResponse']] as const) {
    const started = performance.now()
    // Async hooks that settle, meanwhile, are let through.
    const quick = Array.from({ length: 20 }, () => get('/quick'))
    const res = await get(path).catch((err: Error) => err)
    if (res instanceof Error) { t.fail(`${path}: no answer (${res.message})`); continue }
    const ms = performance.now() - started
    t.equal(res.statusCode, 504, path)
    t.ok(ms >= 900 && ms < 15_000, `${path}: answered after about server.pluginTimeout (${Math.round(ms)} ms)`)
    t.match(JSON.parse(await res.body.text()), { error: 'gateway_timeout' })
    const line = await waitForLog(gw.logs, { msg: 'plugin timed out', requestId: res.headers['x-request-id'] })
    t.match(line, { level: 40, route: 'r', plugin: 'hang', err: { message: `its ${hook} did not finish within server.pluginTimeout (1000 ms)` } })
    const statuses = await Promise.all(quick.map(async q => { const r = await q; await r.body.text(); return r.statusCode }))
    t.ok(statuses.every(s => s === 200), `${path}: the async hooks that settle in time, let through`)
    t.ok(await until(() => gw.gateway.runtime.inFlight === 0, 10_000), `${path}: nothing left in flight`)
  }
  const after = await get('/plain')
  t.equal(after.statusCode, 200, 'the gateway keeps serving')
  t.equal(await after.body.text(), 'ok')
})

// It was logged as an error (`plugin failed`) and failed the finished exchange again: its
// keep-alive connection was destroyed under the next request.
t.test('an onResponse that rejects after its timeout is ignored: no error logged, the connection kept', async t => {
  const client = new Client(gw.url)
  t.teardown(() => client.close())
  let connections = 0
  client.on('connect', () => { connections++ })
  const res = await client.request({ path: '/late-reject', method: 'GET', headersTimeout: 20_000 })
  t.equal(res.statusCode, 504)
  await res.body.dump()
  const requestId = res.headers['x-request-id']
  t.ok(await waitForLog(gw.logs, { msg: 'plugin timed out', requestId }), 'timed out')
  late.reject(new Error('too late'))
  // The rejection is handled in promise jobs, all run before this.
  await new Promise(resolve => setImmediate(resolve))
  t.same(gw.logs.filter(l => l.requestId === requestId && (l.level as number) >= 50), [], 'no error logged for it')
  const next = await client.request({ path: '/plain', method: 'GET' })
  t.equal(next.statusCode, 200)
  await next.body.dump()
  t.equal(connections, 1, 'the next request went on the same connection')
})

t.test('Deadlines: one queue, entries expire in order unless taken, ids hold across compaction', async t => {
  const expired: string[] = []
  const deadlines = new Deadlines<string>(50, item => { expired.push(item) })
  for (let i = 0; i < 3_000; i++) deadlines.take(deadlines.add('taken')) // compacted on the way
  const a = deadlines.add('a')
  const b = deadlines.add('b')
  deadlines.add('c')
  deadlines.take(b)
  deadlines.take(a)
  deadlines.take(a) // twice: nothing more
  t.ok(await until(() => expired.length === 1, 5_000))
  t.same(expired, ['c'])
  // An expired entry taken later, and an entry added from an expiry: the queue goes on.
  const reentrant = new Deadlines<string>(20, item => { expired.push(item); if (item === 'd') reentrant.take(reentrant.add('e')) })
  const d = reentrant.add('d')
  reentrant.add('f')
  t.ok(await until(() => expired.length === 3, 5_000))
  reentrant.take(d)
  t.same(expired, ['c', 'd', 'f'])
})
