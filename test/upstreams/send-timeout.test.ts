import t, { type Test } from 'tap'
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { startUpstream } from '../helpers/upstream.ts'

// An upstream that stops reading a streamed request body is the upstream's failure (nginx's
// proxy_send_timeout), timed by its `idle` timeout; the client's body timeout must not fire while
// the gateway, held back by that upstream, is the one not reading.

/** A raw upstream that reads the request head, then never reads again. */
async function pausingUpstream (t: Test): Promise<string> {
  const sockets: Socket[] = []
  const server = createServer(socket => {
    sockets.push(socket)
    socket.on('error', () => {})
    socket.once('data', () => socket.pause())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

/** PUTs `bytes` with a Content-Length as fast as the gateway takes them; resolves with what came back, once closed (`close`: connection: close). */
async function upload (url: string, bytes: number, close = false): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const got: Buffer[] = []
  socket.on('data', (c: Buffer) => got.push(c))
  socket.write(`PUT /up HTTP/1.1\r\nhost: x\r\n${close ? 'connection: close\r\n' : ''}content-length: ${bytes}\r\n\r\n`)
  const chunk = Buffer.alloc(64 * 1024, 97)
  let sent = 0
  const pump = (): void => {
    while (sent < bytes && !socket.destroyed) {
      sent += chunk.length
      if (!socket.write(chunk)) { socket.once('drain', pump); return }
    }
  }
  pump()
  // Reset, most likely: the gateway closes with the rest of the body unread.
  await new Promise(resolve => socket.once('close', resolve))
  return Buffer.concat(got).toString('latin1')
}

for (const body of ['3s', '0']) {
  t.test(`an upstream that stops reading the body fails the try at its idle timeout (client body timeout ${body})`, async t => {
    const url = await pausingUpstream(t)
    // A spare target, so that the pausing one (round-robin's first pick) is not the last available: that one is never ejected.
    const spare = await startUpstream((req, res) => { req.resume(); res.end() })
    t.teardown(() => spare.close())
    const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: ${body} }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up:
    targets: [ { url: "${url}" }, { url: "${spare.url}" } ]
    timeouts: { response: 1s, idle: 1s }
    passive: { consecutiveFailures: 1 }
routes:
  - { name: r, match: { path: /up }, upstream: up }
`)
    t.teardown(() => gw.close())
    const started = performance.now()
    const answer = await upload(gw.url, 30 * 1024 * 1024)
    const ms = performance.now() - started
    t.ok(ms < 2_900, `ended at the upstream's idle timeout (${Math.round(ms)} ms), before the client's body timeout`)
    if (answer !== '') t.match(answer, /^HTTP\/1\.1 504 /, 'a 504 if the client got anything')
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/up' }), { status: 504 })
    t.match(await waitForLog(gw.logs, { msg: 'upstream request failed' }), { target: url, err: { code: 'UPSTREAM_SEND_TIMEOUT' } })
    t.notOk(gw.logs.some(l => l.msg === 'client too slow: connection closed'), 'not the client\'s fault')
    t.equal(await metricValue(gw.adminUrl as string, 'portcullis_timeouts_total{kind="upstream_send"}'), 1)
    t.equal(await metricValue(gw.adminUrl as string, 'portcullis_timeouts_total{kind="client_body_timeout"}'), 0)
    t.equal(await metricValue(gw.adminUrl as string, `portcullis_upstream_target_healthy{upstream="up",target="${url}"}`), 0, 'counted against the target (ejected)')
  })
}

t.test('the client\'s body timeout is held while the upstream holds the body back', async t => {
  const up = await startUpstream((req, res) => {
    req.pause()
    setTimeout(() => { req.resume(); req.on('end', () => res.end('ok')) }, 2_000)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 1s }
upstreams:
  up:
    targets: [ { url: "${up.url}" } ]
    timeouts: { idle: 5s }
routes:
  - { name: r, match: { path: /up }, upstream: up }
`)
  t.teardown(() => gw.close())
  t.match(await upload(gw.url, 30 * 1024 * 1024, true), /^HTTP\/1\.1 200 /, 'a 2 s stall of the upstream is not the client\'s 1 s body timeout')
  t.notOk(gw.logs.some(l => l.msg === 'client too slow: connection closed'))
})
