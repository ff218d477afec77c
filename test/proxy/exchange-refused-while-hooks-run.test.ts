import t, { type Test } from 'tap'
import { join } from 'node:path'
import { connect } from 'node:net'
import { PassThrough } from 'node:stream'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { waitForLog } from '../helpers/logs.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// request-size refuses a chunked body past maxBody while onResponse hooks still run on the
// upstream's answer (which came before the body was read). The refusal was answered at once,
// through a second response phase, while the upstream's went on: both wrote (the client got the
// 200's head, then a closed connection; ERR_HTTP_HEADERS_SENT logged as a plugin's failure; 499
// logged), and the upstream phase's streams were lost track of (never destroyed if its hook never
// settled). One answer now: the 413, once those hooks are done, the upstream's answer dropped.
// `holder` (900) holds each response of a path until the test opens its gate (x-hang: for ever);
// `piper` (100) gives the response a body stream (x-pipe), whose close it notes by path and status.
const dir = t.testdir({})
const s = sharedWithPlugins('refused-hooks', {
  PassThrough,
  started: new Set<string>(),
  gates: new Map<string, Promise<void>>(),
  closed: new Set<string>()
})
writeUserPlugin(dir, 'piper', 100, `{
  onResponse (res, req) {
    if (req.clientHeaders['x-pipe'] === undefined) return
    const s = shared('refused-hooks')
    const stream = new s.PassThrough()
    const tag = req.path + ':' + res.status
    stream.once('close', () => { s.closed.add(tag) })
    res.pipeThrough(stream)
  }
}`)
writeUserPlugin(dir, 'holder', 900, `{
  onResponse (_res, req) {
    const s = shared('refused-hooks')
    s.started.add(req.path)
    if (req.clientHeaders['x-hang'] !== undefined) return new Promise(() => {})
    return s.gates.get(req.path)
  }
}`)
const aborted = new Set<string>()
const up = await startUpstream((req, res) => {
  // The socket's close: a request whose response is sent is no longer closed with it.
  req.socket.once('close', () => { if (!req.complete) aborted.add(req.url as string) })
  res.writeHead(200, { 'content-length': '5' }).end('hello')
})
t.teardown(() => up.close())
const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 2s
loadPlugins: [ ./piper.ts, ./holder.ts ]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: u, plugins: { request-size: { maxBody: 1000 }, piper: {}, holder: {} } }
`, { file: join(dir, 'gw.yaml'), admin: true })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/**
 * A chunked POST to `path`: 512 bytes, and once the upstream's answer is in the hooks, 1024 more
 * (past maxBody). `open` is called once the refusal has aborted the upstream request; the client's
 * read is returned once `done` holds of it.
 */
async function refusedMidHooks (t: Test, path: string, headers: string, open: () => void, done: (answer: string) => boolean): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString('latin1') })
  socket.on('error', () => {})
  try {
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${headers}\r\n200\r\n${'a'.repeat(512)}\r\n`)
    t.ok(await until(() => s.started.has(path)), `${path}: the upstream answered, its hooks run`)
    socket.write(`400\r\n${'b'.repeat(1024)}\r\n`)
    t.ok(await until(() => aborted.has(path)), `${path}: the refusal aborted the upstream request`)
    open()
    t.ok(await until(() => done(answer) || socket.destroyed), `${path}: answered`)
    return answer
  } finally {
    socket.destroy()
  }
}

const whole = (answer: string): boolean => /\r\n\r\n\{[^]*\}$/.test(answer)
const series = (status: number): string => `portcullis_http_requests_total{route="r",method="POST",status="${status}"}`

t.test('refused while a hook holds the upstream\'s answer: the 413 alone, once the hook is done', async t => {
  const logged = gw.logs.length
  const counted = await metricValue(gw.adminUrl as string, series(413))
  let open!: () => void
  s.gates.set('/plain', new Promise<void>(resolve => { open = resolve }))
  const answer = await refusedMidHooks(t, '/plain', '', () => open(), whole)
  t.match(answer, /^HTTP\/1\.1 413 /, 'the refusal is the answer')
  t.match(answer, /"error":"body_too_large"/)
  t.notMatch(answer, /HTTP\/1\.1 200|hello/, 'nothing of the upstream\'s answer')
  t.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/plain' }), { status: 413, error: undefined }, 'logged as sent')
  t.equal(await metricValue(gw.adminUrl as string, series(413)), counted + 1, 'counted as sent')
  t.same(gw.logs.slice(logged).filter(l => (l.level as number) >= 50), [], 'nothing logged as an error')
})

t.test('refused while a hook holds an answer it gave a body stream: the stream is destroyed, the 413 goes through the hooks', async t => {
  let open!: () => void
  s.gates.set('/piped', new Promise<void>(resolve => { open = resolve }))
  const answer = await refusedMidHooks(t, '/piped', 'x-pipe: 1\r\n', () => open(), whole)
  t.match(answer, /^HTTP\/1\.1 413 /)
  t.notMatch(answer, /HTTP\/1\.1 200|hello/)
  t.ok(await until(() => s.closed.has('/piped:200')), 'the upstream answer\'s stream is destroyed')
  t.ok(await until(() => s.closed.has('/piped:413')), 'the refusal went through the hooks, its stream ended')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/piped' }), { status: 413, error: undefined })
})

t.test('refused while a hook that never settles holds the upstream\'s answer: its 504, the stream it was given destroyed', async t => {
  const answer = await refusedMidHooks(t, '/hang', 'x-pipe: 1\r\nx-hang: 1\r\n', () => {}, whole)
  t.match(answer, /^HTTP\/1\.1 504 /, 'the hook\'s timeout is the answer')
  t.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer')
  t.ok(await until(() => s.closed.has('/hang:200')), 'the upstream answer\'s stream is destroyed')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/hang' }), { status: 504 })
})
