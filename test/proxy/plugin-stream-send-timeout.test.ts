import t, { type Test } from 'tap'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { connect as netConnect } from 'node:net'
import { connect, constants, type ClientHttp2Stream } from 'node:http2'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startH2Gateway } from '../helpers/http2.ts'
import { until } from '../helpers/wait.ts'
import { waitForLog } from '../helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

// A response through a plugin's body stream (compress) once the upstream's body is all in: the
// client that stops reading it was never timed (the send timer was cleared at the upstream's end,
// the bytes then still in the encoder), and held its stream, its memory and its config for ever.

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const SEND_MS = 1_000
/** Time for the cut past clientTimeouts.send: timers, the encoder, a loaded test machine. */
const SLACK_MS = 3_000

/** JSON of random base64: compresses to about three quarters, far more than the 16 KiB a stream or a response holds before it waits. */
function poorlyCompressible (bytes: number): Buffer {
  return Buffer.from(JSON.stringify({ data: randomBytes(Math.ceil(bytes * 3 / 4)).toString('base64') }))
}

async function upstreamOf (t: Test, body: Buffer): Promise<string> {
  const up = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
  })
  t.teardown(() => up.close())
  return up.url
}

const routes = (url: string, upstreamKeys = '') => `upstreams:
  up:
    targets: [ { url: "${url}" } ]
${upstreamKeys}routes:
  - { name: zipped, match: { path: /* }, upstream: up, plugins: { compress: {} } }
`

/** Over HTTP/2 with no window for the answers: `count` GETs of `/s<i>`, each reset by the gateway after clientTimeouts.send (and the exchanges over). */
async function shutWindows (t: Test, rest: string, count: number): Promise<void> {
  const { gw, ca } = await startH2Gateway(t, 'true', rest, { server: `  clientTimeouts: { send: ${SEND_MS}ms }\n` })
  const session = connect(gw.url, { ca: ca.cert, settings: { initialWindowSize: 0 } })
  t.teardown(() => session.destroy())
  const streams: ClientHttp2Stream[] = []
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    const stream = session.request({ ':path': `/s${i}`, 'accept-encoding': 'gzip' })
    stream.on('error', () => {}) // the reset, read below
    streams.push(stream)
  }
  t.ok(await until(() => streams.every(s => s.closed), SEND_MS + SLACK_MS), 'the gateway closed every stream')
  t.ok(performance.now() - started < SEND_MS + SLACK_MS, 'within clientTimeouts.send')
  for (const s of streams) t.equal(s.rstCode, constants.NGHTTP2_INTERNAL_ERROR, 'reset, not ended as if complete')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/s0' }), { status: 200, error: 'client_send_timeout' })
  t.match(await waitForLog(gw.logs, { msg: 'client too slow: stream reset' }), {}, 'logged')
  t.match(await gw.metrics.registry.metrics(), new RegExp(`portcullis_timeouts_total\\{kind="client_send_timeout"\\} ${count}`))
  t.ok(await until(() => gw.inFlight === 0), 'no exchange left open')
}

t.test('HTTP/2: streams of a compressed answer, read whole from the upstream, that the client grants no window are reset after clientTimeouts.send', async t => {
  // 48 KiB, read whole (under the default responseBuffer) before the encoder has put out much of it.
  await shutWindows(t, routes(await upstreamOf(t, poorlyCompressible(48 * 1024))), 4)
})

t.test('HTTP/1.1: a compressed answer read whole from the upstream (responseBuffer) that the client never reads is cut after clientTimeouts.send', async t => {
  // 8 MB: more than loopback's socket buffers take of its encoding.
  const url = await upstreamOf(t, poorlyCompressible(8_000_000))
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { send: ${SEND_MS}ms }
${routes(url, '    responseBuffer: 16MiB\n')}`)
  t.teardown(() => gw.close())
  const socket = netConnect(Number(new URL(gw.url).port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  t.teardown(() => socket.destroy())
  socket.pause() // never reads
  const started = performance.now()
  socket.write('GET /big HTTP/1.1\r\nhost: x\r\naccept-encoding: gzip\r\n\r\n')
  t.ok(await until(() => gw.inFlight === 1), 'in flight while unread (a live count: see startGateway)')
  // A paused socket never sees the reset: the access line says when the gateway cut it.
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/big' }, SEND_MS + SLACK_MS), { status: 200, error: 'client_send_timeout' })
  t.ok(performance.now() - started < SEND_MS + SLACK_MS, 'within clientTimeouts.send')
  t.match(await waitForLog(gw.logs, { msg: 'client too slow: connection closed' }), {}, 'logged')
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_send_timeout"\} 1/)
  t.ok(await until(() => gw.inFlight === 0), 'no exchange left open')
})

t.test('HTTP/2: a streamed answer whose plugin stream puts it out only at the upstream\'s end, left unread, is reset after clientTimeouts.send', async t => {
  // The upstream's body is all in (no backpressure: the stream takes it all) before the client is
  // sent a byte; put out later, as an encoder working off the main thread does.
  const dir = t.testdir({})
  sharedWithPlugins('Transform', Transform)
  writeUserPlugin(dir, 'holder', 100, `{
    onResponse (res) {
      const held = []
      res.pipeThrough(new (shared('Transform'))({
        transform (c, _e, cb) { held.push(c); cb() },
        flush (cb) { setImmediate(() => { for (const c of held) this.push(c); cb() }) }
      }))
    }
  }`)
  const body = Buffer.alloc(1024 * 1024, 'h')
  const up = await startUpstream((req, res) => { req.resume(); res.write(body); res.end() }) // chunked: streamed, not read whole
  t.teardown(() => up.close())
  await shutWindows(t, `loadPlugins: [ ${join(dir, 'holder.ts')} ]
upstreams:
  up:
    targets: [ { url: "${up.url}" } ]
routes:
  - { name: held, match: { path: /* }, upstream: up, plugins: { holder: {} } }
`, 2)
})
