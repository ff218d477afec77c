import t from 'tap'
import { join } from 'node:path'
import { connect } from 'node:net'
import { Transform } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { headerValues, rawThenAgain } from '../helpers/raw-http.ts'
import { h2Connect, h2Request } from '../helpers/http2.ts'
import { waitForLog } from '../helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Whatever response plugins do to a body or its head, the gateway sends exactly the bytes its head
// declares: a longer body would be read, on a kept-alive connection, as the next response.
const BODY = 'u'.repeat(359)
const SMUGGLED = 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\nx-smuggled: yes\r\n\r\nPWNED!'
const dir = t.testdir({})
sharedWithPlugins('framing-transform', Transform)
sharedWithPlugins('framing-smuggled', SMUGGLED)
writeUserPlugin(dir, 'framer', 500, `{
  onRequest (req) {
    if (req.path === '/extra') req.extraResponseHeaders['content-length'] = '5'
    if (req.path === '/reply-without-body') return { status: 200, headers: { 'content-length': '10' } }
  },
  onResponse (res, req) {
    const T = shared('framing-transform')
    const more = Buffer.from(shared('framing-smuggled'))
    const p = req.path
    if (p === '/grow') res.pipeThrough(new T({ transform (c, _e, cb) { cb(null, Buffer.concat([c, more])) } }))
    if (p === '/grow-late') res.pipeThrough(new T({ transform (c, _e, cb) { cb(null, c) }, flush (cb) { cb(null, more) } }))
    if (p === '/shrink') res.pipeThrough(new T({ transform (c, _e, cb) { cb(null, this.cut ? undefined : (this.cut = true, c.subarray(0, 10))) } }))
    if (p === '/declare' || p === '/chunked/declare') res.headers['content-length'] = '5'
    if (p === '/chunked/declare-right') res.headers['content-length'] = String(${BODY.length})
    if (p === '/no-content') res.status = 204
    if (p === '/interim') res.status = 101
  }
}`)
writeUserPlugin(dir, 'extra', 500, "{ onRequest (req) { req.extraResponseHeaders['transfer-encoding'] = 'chunked' } }")

// The body with a Content-Length, or chunked under /chunked/.
const up = await startUpstream((req, res) => {
  if (req.url?.startsWith('/chunked/') === true) { res.write(BODY); res.end(); return }
  res.end(BODY)
})
t.teardown(() => up.close())
const gw = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
loadPlugins: [ ./framer.ts, ./extra.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: fast, match: { path: /fast }, upstream: up, plugins: { extra: {} } }
  - { name: framed, match: { path: /* }, upstream: up, plugins: { framer: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

const get = (path: string, method = 'GET') => [`${method} ${path} HTTP/1.1`, 'host: x']
const NEXT = get('/plain')

/** Sends `path`, reads until the gateway closes the connection, or `ms` passed (then `closed` is false; 10 s: room for a loaded machine). */
function readToClose (path: string, ms = 10_000): Promise<{ text: string, closed: boolean }> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const done = (closed: boolean) => { clearTimeout(timer); socket.destroy(); resolve({ text: Buffer.concat(chunks).toString('latin1'), closed }) }
    const timer = setTimeout(done, ms, false)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('close', () => done(true))
    socket.on('error', () => {})
    socket.write(get(path).join('\r\n') + '\r\n\r\n')
  })
}

/** The plugin-failure lines logged for `path`'s request id. */
function failure (requestId: string | undefined): string | undefined {
  const line = gw.logs.find(l => l.msg === 'plugin failed' && l.requestId === requestId)
  return (line?.err as { message?: string } | undefined)?.message
}

t.test('a stream that lengthens the body, content-length kept: a 500 before any byte, never a second response on the connection', async t => {
  const { first, second } = await rawThenAgain(port, get('/grow'), '', NEXT)
  t.equal(first.status, 500)
  t.match(first.body, /"error":"plugin_error"/)
  t.not(second, 'closed')
  if (second === 'closed') return
  t.equal(second.status, 200, 'the next response is the next request\'s')
  t.same(headerValues(second, 'x-smuggled'), [])
  t.equal(second.body, BODY)
  t.match(failure(headerValues(first, 'x-request-id')[0]), /plugin framer changed the response body or its content-length.*more than 359.*says 359/)
})

t.test('a stream that lengthens the body past its first bytes: the response is cut at the declared length, the connection closed', async t => {
  const { text, closed } = await readToClose('/grow-late')
  t.ok(closed, 'the gateway closed the connection')
  // What the gateway had written before the cut may or may not have reached the socket: never more.
  const [head = '', ...rest] = text.split('\r\n\r\n')
  if (text !== '') t.match(head, /^HTTP\/1\.1 200 [^]*content-length: 359/)
  t.ok(BODY.startsWith(rest.join('\r\n\r\n')), 'at most the declared bytes')
  t.notMatch(text, 'x-smuggled')
  const line = await waitForAccess('/grow-late')
  t.equal(line.error, 'plugin_failed', 'the access line says why')
  t.equal(line.bytes, 359)
})

t.test('a stream that shortens the body: the response is cut, not left for the client to wait on', async t => {
  const { text, closed } = await readToClose('/shrink')
  t.ok(closed, 'the gateway closed the connection')
  t.match(text, /content-length: 359\r\n[^]*\r\n\r\nu{10}$/)
  t.equal((await waitForAccess('/shrink')).error, 'plugin_failed')
})

t.test('a content-length set that the body does not have: a 500, nothing of the body sent', async t => {
  for (const path of ['/declare', '/chunked/declare', '/reply-without-body', '/extra', '/fast', '/interim']) {
    const { first, second } = await rawThenAgain(port, get(path), '', NEXT)
    t.equal(first.status, 500, path)
    t.match(first.body, /"error":"plugin_error"/, path)
    t.ok(second !== 'closed' && second.status === 200 && second.body === BODY, `${path}: the connection carries the next response`)
  }
  const logged = gw.logs.filter(l => l.msg === 'plugin failed').map(l => (l.err as { message: string }).message)
  for (const re of [
    /plugin framer set content-length to 5, but the body is 359 bytes/,
    /plugin framer changed the response body or its content-length.*more than 5 bytes, content-length says 5/,
    /plugin framer set content-length to 10, but the body is 0 bytes/,
    /extraResponseHeaders may not set content-length/,
    /extraResponseHeaders may not set transfer-encoding/,
    /plugin framer set res.status to 101/
  ]) t.ok(logged.some(m => re.test(m)), `logged: ${re.source}`)
})

t.test('a content-length a plugin sets on a body of unknown length, and right: sent as set', async t => {
  const res = await request(`${gw.url}/chunked/declare-right`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(BODY.length))
  t.equal(await res.body.text(), BODY)
})

t.test('a hook that makes a 200 a 204: no content-length, no body, and the connection carries the next response', async t => {
  const { first, second } = await rawThenAgain(port, get('/no-content'), '', NEXT)
  t.equal(first.status, 204)
  t.same(headerValues(first, 'content-length'), [])
  t.same(headerValues(first, 'transfer-encoding'), [])
  t.ok(second !== 'closed' && second.status === 200 && second.body === BODY, 'the next response follows at once')
})

t.test('a HEAD through a stream that lengthens the body: the head, no body', async t => {
  const { first, second } = await rawThenAgain(port, get('/grow-late', 'HEAD'), '', NEXT)
  t.equal(first.status, 200)
  t.ok(second !== 'closed' && second.status === 200 && second.body === BODY, 'the next response follows at once')
})

t.test('HTTP/2: the stream is reset at the declared length, or answered 500 before any byte', async t => {
  const session = await h2Connect(gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  const late = await new Promise<{ status: number, body: string, error: string | undefined }>(resolve => {
    const stream = session.request({ ':path': '/grow-late' })
    let status = 0
    let body = ''
    stream.on('response', h => { status = Number(h[':status']) })
    stream.on('data', (c: Buffer) => { body += c.toString('latin1') })
    stream.on('error', (err: Error & { code?: string }) => resolve({ status, body, error: err.message }))
    stream.on('end', () => resolve({ status, body, error: undefined }))
  })
  t.equal(late.status, 200)
  t.match(late.error, /NGHTTP2_INTERNAL_ERROR/, 'reset by the gateway, not read as whole')
  t.ok(late.body.length <= 359 && !late.body.includes('x-smuggled'), 'never more than declared')
  const grown = await new Promise<number>((resolve, reject) => {
    const stream = session.request({ ':path': '/grow' })
    stream.on('response', h => resolve(Number(h[':status'])))
    stream.on('error', reject)
    stream.resume()
  })
  t.equal(grown, 500)
  const noContent = await h2Request(session, { ':path': '/no-content' })
  t.equal(noContent.status, 204, 'a hook\'s 204: no body, no error')
  t.equal(noContent.headers['content-length'], undefined)
  t.equal((await h2Request(session, { ':path': '/plain' })).status, 200, 'the session goes on')
})

async function waitForAccess (path: string): Promise<Record<string, unknown>> {
  return await waitForLog(gw.logs, { msg: 'request', path }) ?? {}
}
