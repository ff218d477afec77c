import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { until } from '../helpers/wait.ts'
import { bodyBytesReserved } from '../../src/proxy/body-budget.ts'

// server.requestBufferTotal: the bytes of request bodies read ahead of their upstream connection are
// bounded for the process, not only per request (requestBuffer): past the budget a body streams.

const KIB = 1024
const BUDGET = 256 * KIB

/** Bodies the upstreams saw begin, and the tries of /retry (the first answered 503). */
interface Seen { begun: number, retryTries: number }

function handler (seen: Seen) {
  return (req: IncomingMessage, res: ServerResponse) => {
    seen.begun++
    let bytes = 0
    req.on('data', (c: Buffer) => { bytes += c.length })
    req.on('end', () => {
      if (req.url === '/retry' && seen.retryTries++ === 0) { res.writeHead(503).end(); return }
      res.end(`got ${bytes}`)
    })
  }
}

async function gateway (t: Test, upstreamExtra = ''): Promise<{ gw: TestGateway, seen: Seen }> {
  const seen: Seen = { begun: 0, retryTries: 0 }
  const a = await startUpstream(handler(seen))
  const b = await startUpstream(handler(seen))
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  requestBufferTotal: 256KiB
  clientTimeouts: { body: 2s }
upstreams:
  up:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    requestBuffer: 64KiB
    retries: { on: [connect-error, reset, 503], methods: [POST] }
${upstreamExtra}
routes:
  - { name: all, match: { path: /* }, upstream: up }
`, { admin: true })
  t.teardown(() => gw.close())
  return { gw, seen }
}

async function stalledUpload (gw: TestGateway, head: string, sent: number): Promise<Socket> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  socket.on('error', () => {})
  socket.resume()
  await once(socket, 'connect')
  socket.write(head + 'x'.repeat(sent))
  return socket
}

/** Connections the upstream's targets hold now. */
const held = (gw: TestGateway): number => (gw.gateway.runtime.upstreamSnapshots()[0]?.targets ?? []).reduce((n, target) => n + target.inFlight, 0)

/** The most reserved at any time while `run` runs (sampled every millisecond). */
async function peak (run: () => Promise<void>): Promise<number> {
  let max = 0
  const timer = setInterval(() => { max = Math.max(max, bodyBytesReserved()) }, 1)
  try { await run() } finally { clearInterval(timer) }
  return Math.max(max, bodyBytesReserved())
}

async function post (gw: TestGateway, path: string, bytes: number): Promise<{ status: number, body: string }> {
  const r = await request(`${gw.url}${path}`, { method: 'POST', body: 'y'.repeat(bytes) })
  return { status: r.statusCode, body: await r.body.text() }
}

t.test('stalled uploads past the budget are streamed, not buffered; the budget is back to 0 once they leave or time out', async t => {
  const { gw, seen } = await gateway(t)
  const metric = () => metricValue(gw.adminUrl as string, 'portcullis_request_buffer_bytes')

  t.same(await post(gw, '/retry', 1000), { status: 200, body: 'got 1000' }, 'a small POST within the budget is read whole, so retried')
  t.equal(seen.retryTries, 2)
  t.equal(await metric(), 0, 'given back once sent')
  seen.begun = 0

  const head = `POST /stall HTTP/1.1\r\nhost: x\r\ncontent-length: ${64 * KIB}\r\n\r\n`
  const sockets: Socket[] = []
  const max = await peak(async () => {
    for (let i = 0; i < 8; i++) sockets.push(await stalledUpload(gw, head, 63 * KIB))
    t.ok(await until(() => gw.gateway.runtime.inFlight === 8 && seen.begun === 4), 'all 8 in flight, 4 begun upstream')
  })
  t.teardown(() => { for (const s of sockets) s.destroy() })
  t.ok(max <= BUDGET, `never past the budget (peak ${max})`)
  t.equal(bodyBytesReserved(), BUDGET, 'four 64 KiB bodies fill it')
  t.equal(await metric(), BUDGET, 'portcullis_request_buffer_bytes shows it')
  t.equal(held(gw), 4, 'the 4 past the budget streamed: each holds a connection, its first bytes sent')

  // A small POST past the budget still goes through, streamed (one try: its body is not held for a retry).
  seen.retryTries = 0
  t.same(await post(gw, '/retry', 1000), { status: 503, body: '' }, 'a streamed body is not sent again')
  t.equal(seen.retryTries, 1)

  // Two leave; the others stall until clientTimeouts.body.
  for (const s of sockets.slice(0, 2)) s.destroy()
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0 && held(gw) === 0, 6_000), 'every stalled upload ended')
  t.equal(bodyBytesReserved(), 0, 'nothing left reserved')
  t.equal(await metric(), 0)

  seen.retryTries = 0
  t.same(await post(gw, '/retry', 1000), { status: 200, body: 'got 1000' }, 'retried again once the budget allows')
  t.equal(seen.retryTries, 2)
  t.equal(bodyBytesReserved(), 0)
})

t.test('a streamed body queued for a busy target is read ahead only within the budget, and gives it back when it leaves', async t => {
  const { gw, seen } = await gateway(t, '    connections: 1\n    queue: { max: 10, timeout: 10s }')
  // Holds both targets' only connection: a body over requestBuffer, begun then stalled.
  const big = `POST /stall HTTP/1.1\r\nhost: x\r\ncontent-length: ${1024 * KIB}\r\n\r\n`
  const holders = [await stalledUpload(gw, big, 100), await stalledUpload(gw, big, 100)]
  t.ok(await until(() => held(gw) === 2), 'both connections held')
  // Queued, chunked: read on up to requestBuffer while within the budget (4 of 6).
  const chunked = 'POST /queued HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n' + `64\r\n${'z'.repeat(100)}\r\n`
  const queued: Socket[] = []
  const max = await peak(async () => {
    for (let i = 0; i < 6; i++) queued.push(await stalledUpload(gw, chunked, 0))
    t.ok(await until(() => gw.gateway.runtime.inFlight === 8 && bodyBytesReserved() === BUDGET), '6 queued, 4 read ahead')
  })
  t.ok(max <= BUDGET, `never past the budget (peak ${max})`)
  t.equal(seen.begun, 2, 'the queued ones wait')
  for (const s of [...queued, ...holders]) s.destroy()
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'all gone')
  t.equal(bodyBytesReserved(), 0, 'nothing left reserved')
})

t.test('a body read whole stays counted while a retry of it waits or runs: a retry sends it again', async t => {
  // The first try answered 503, the second held until released: the body is still the gateway's.
  let release: () => void = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  let tries = 0
  const answer503ThenHold = (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => { if (tries++ === 0) res.writeHead(503).end(); else void held.then(() => res.end('ok')) })
  }
  const [a, b] = await Promise.all([startUpstream(answer503ThenHold), startUpstream(answer503ThenHold)])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  requestBufferTotal: 256KiB
upstreams:
  up:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    requestBuffer: 64KiB
    retries: { on: [503], methods: [POST] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const answer = request(`${gw.url}/r`, { method: 'POST', body: Buffer.alloc(60 * KIB) })
  t.ok(await until(() => tries === 2), 'retried')
  t.equal(bodyBytesReserved(), 60 * KIB, 'its body counted during the retry')
  release()
  const res = await answer
  t.equal(await res.body.text(), 'ok')
  t.ok(await until(() => bodyBytesReserved() === 0), 'given back at its end')
})
