import t from 'tap'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Transform } from 'node:stream'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { headerValues, rawCut, rawThenAgain } from './helpers/raw-http.ts'
import { waitForLog } from './helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// A response plugin that removes content-length in onResponse, then sets the head's framing from its
// stream's flush(), once the head was checked: the head that goes out is framed again as it is
// written, a Content-Length set late is the one the body is held to (never more or fewer bytes sent).
const BODY = 'b'.repeat(16)
const dir = t.testdir({})
sharedWithPlugins('late-transform', Transform)
writeUserPlugin(dir, 'late', 500, `{
  onResponse (res, req) {
    delete res.headers['content-length']
    const late = {
      '/exact': { 'content-length': '16' },
      '/zip/exact': { 'content-length': '16' },
      '/short': { 'content-length': '26' },
      '/long': { 'content-length': '6' },
      '/malformed': { 'content-length': 'six' },
      '/hop': { 'content-length': '16', 'Transfer-Encoding': 'chunked', 'keep-alive': 'timeout=1' }
    }[req.path]
    const chunks = []
    res.pipeThrough(new (shared('late-transform'))({
      transform (c, _e, cb) { chunks.push(c); cb() },
      flush (cb) { Object.assign(res.headers, late); cb(null, Buffer.concat(chunks)) }
    }))
  }
}`)
const up = await startUpstream((_req, res) => { res.setHeader('content-type', 'text/plain'); res.end(BODY) })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./late.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: zip, match: { path: /zip/* }, upstream: up, plugins: { late: {}, compress: {} } }
  - { name: late, match: { path: /* }, upstream: up, plugins: { late: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)
const get = (path: string) => [`GET ${path} HTTP/1.1`, 'host: x']
const failed = (requestId: string | undefined) => waitForLog(gw.logs, { msg: 'plugin failed', requestId })

t.test('a content-length set late that matches the body: sent, the body held to it, the connection kept', async t => {
  const { first, second } = await rawThenAgain(port, get('/exact'), '', get('/exact'))
  t.equal(first.status, 200)
  t.same(headerValues(first, 'content-length'), ['16'])
  t.same(headerValues(first, 'transfer-encoding'), [], 'not chunked')
  t.equal(first.body, BODY)
  t.not(second, 'closed', 'the next response on the connection reads whole')
  if (second !== 'closed') t.equal(second.body, BODY)
})

t.test('a content-length set late below the body: 500 plugin_error before any of it, the connection kept', async t => {
  const { first, second } = await rawThenAgain(port, get('/long'), '', get('/exact'))
  t.equal(first.status, 500)
  t.match(JSON.parse(first.body), { error: 'plugin_error' })
  t.not(second, 'closed', 'the next response reads whole, not the rest of a longer body')
  if (second !== 'closed') t.equal(second.body, BODY)
  const requestId = headerValues(first, 'x-request-id')[0]
  t.match(await failed(requestId), { plugin: 'late', err: { message: /the body came to more than 6 bytes, content-length says 6/ } })
})

t.test('a content-length set late above the body: what there is, then the connection closed, logged as the plugin\'s', async t => {
  // Cut once its head is out: a reset (rawCut takes what came before it).
  const res = await Promise.race([rawCut(port, get('/short')), sleep(10_000, 'hung' as const)])
  if (res === 'hung') { t.fail('the client was left waiting for the rest'); return }
  t.equal(res.status, 200)
  t.same(headerValues(res, 'content-length'), ['26'])
  t.equal(res.body, BODY, 'the 16 bytes there are, then the close')
  const requestId = headerValues(res, 'x-request-id')[0]
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId }), { status: 200, error: 'plugin_failed' })
  t.match(await failed(requestId), { plugin: 'late', err: { message: /the body came to 16 bytes, content-length says 26/ } })
})

t.test('a malformed content-length set late: 500 plugin_error naming the plugin', async t => {
  const { first, second } = await rawThenAgain(port, get('/malformed'), '', get('/exact'))
  t.equal(first.status, 500)
  t.not(second, 'closed')
  t.match(await failed(headerValues(first, 'x-request-id')[0]), { plugin: 'late', err: { message: /content-length to "six"/ } })
})

t.test('transfer-encoding and hop-by-hop fields set late are dropped', async t => {
  const { first, second } = await rawThenAgain(port, get('/hop'), '', get('/exact'))
  t.equal(first.status, 200)
  t.same(headerValues(first, 'content-length'), ['16'])
  t.same(headerValues(first, 'transfer-encoding'), [], 'never beside a content-length')
  t.notOk(headerValues(first, 'keep-alive').includes('timeout=1'), 'Node\'s own keep-alive, not the plugin\'s')
  t.equal(first.body, BODY)
  t.not(second, 'closed')
  if (second !== 'closed') t.equal(second.body, BODY)
})

// late's stream sets the length of its own output in its flush, and compress's stream (after it)
// changes that output: the cut was logged as compress's, the framer of the hooks (it removed
// content-length), which set nothing.
t.test('a content-length set late by one of several plugins\' streams: the cut blames no plugin wrongly', async t => {
  const res = await Promise.race([rawCut(port, [...get('/zip/exact'), 'accept-encoding: gzip']), sleep(10_000, 'hung' as const)])
  if (res === 'hung') { t.fail('the client was left waiting'); return }
  t.same(headerValues(res, 'content-length'), ['16'], 'the length set late went out')
  const requestId = headerValues(res, 'x-request-id')[0]
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId }), { route: 'zip', error: 'plugin_failed' }, 'cut, not sent past it')
  const line = await failed(requestId)
  t.equal(line?.plugin, undefined, 'no plugin named as if it were the one')
  t.match(line, { err: { message: /^a body stream of plugin late or compress changed the response body or its content-length, and they no longer match/ } })
})
