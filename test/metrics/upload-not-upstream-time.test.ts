import t from 'tap'
import { request } from 'undici'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { until } from '../helpers/wait.ts'

// A client's slow upload of a streamed body (over requestBuffer, 64 KiB) was counted as the
// upstream's response time, from the dispatch: the upstream histogram and the p2c-ewma latency
// blamed the backend for slow clients. The upload is now overhead (body streaming, at the client's pace).

const CHUNK = 20 * 1024
const CHUNKS = 5
const GAP_MS = 50

/** Sends a POST whose body comes in CHUNKS pieces GAP_MS apart (`stopAfter`: then closes mid-body); the ms from first to last piece. */
async function trickle (port: number, path: string, stopAfter = CHUNKS): Promise<{ socket: Socket, uploadMs: number }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const piece = Buffer.alloc(CHUNK, 'a')
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${CHUNK * CHUNKS}\r\n\r\n`)
  socket.write(piece)
  const start = performance.now()
  for (let i = 1; i < stopAfter; i++) {
    await sleep(GAP_MS) // a client's pace: nothing to wait on but time
    socket.write(piece)
  }
  return { socket, uploadMs: performance.now() - start }
}

/** A gateway (with its admin) whose one route goes to an upstream `u` answering with `handler`, p2c-ewma balanced. */
async function gateway (t: { teardown (fn: () => unknown): void }, handler: (req: IncomingMessage, res: ServerResponse) => void, upstreamKeys = ''): Promise<TestGateway> {
  const up = await startUpstream(handler)
  const gw = await startGateway(`upstreams:
  u: { balance: p2c-ewma, targets: [ { url: "${up.url}" } ]${upstreamKeys} }
routes:
  - { name: r, match: { path: /* }, upstream: u }
`, { admin: true })
  t.teardown(async () => { await gw.close(); await up.close() })
  return gw
}

/** The p2c-ewma latency of the upstream's one target, as GET /upstreams shows it. */
async function targetLatency (admin: string): Promise<number> {
  const list = await (await request(`${admin}/upstreams`)).body.json() as { upstreams: Array<{ targets: Array<{ latencyMs: number }> }> }
  return list.upstreams[0]?.targets[0]?.latencyMs as number
}

const readsAll = (req: IncomingMessage, res: ServerResponse) => { req.resume(); req.on('end', () => res.end('ok')) }

t.test('a trickled upload is not the upstream\'s response time, nor its balancing latency: it is overhead', async t => {
  const gw = await gateway(t, readsAll)
  const admin = gw.adminUrl as string
  const series = 'portcullis_upstream_response_duration_seconds_sum{upstream="u"}'
  await (await request(`${gw.url}/warm`)).body.dump() // the connection and the code path warmed up first
  // The latency is peak-sensitive: the warm-up's (a new connection, tens of ms on a loaded machine) stays until outdone.
  const warmLatency = await targetLatency(admin)
  const before = await metricValue(admin, series)
  const { socket, uploadMs } = await trickle(Number(new URL(gw.url).port), '/up')
  const answer: Buffer[] = []
  socket.on('data', (c: Buffer) => answer.push(c))
  await once(socket, 'end')
  t.match(Buffer.concat(answer).toString(), /^HTTP\/1\.1 200 /, 'answered once the body was in')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.method === 'POST')), 'its access line (metrics counted first)')
  const upstream = await metricValue(admin, series) - before
  const overhead = await metricValue(admin, 'portcullis_gateway_overhead_seconds_sum{route="r"}')
  t.equal(await metricValue(admin, 'portcullis_upstream_response_duration_seconds_count{upstream="u"}'), 2, 'the try observed')
  t.ok(upstream * 1000 < uploadMs / 4, `upstream response time ${(upstream * 1000).toFixed(1)} ms, well under the ${uploadMs.toFixed(0)} ms upload`)
  t.ok(overhead * 1000 >= uploadMs * 0.9, `the upload is overhead: ${(overhead * 1000).toFixed(1)} ms`)
  const latency = await targetLatency(admin)
  t.ok(latency <= Math.max(warmLatency, uploadMs / 4), `the p2c-ewma latency is the same figure (${latency} ms; ${warmLatency} ms after the warm-up)`)
})

t.test('a client that leaves mid-upload: the upload so far is not upstream time either', async t => {
  const gw = await gateway(t, readsAll)
  const { socket } = await trickle(Number(new URL(gw.url).port), '/up', 3)
  socket.destroy()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.status === 499)), 'its 499 logged')
  const overhead = await metricValue(gw.adminUrl as string, 'portcullis_gateway_overhead_seconds_sum{route="r"}')
  const whole = await metricValue(gw.adminUrl as string, 'portcullis_http_request_duration_seconds_sum{route="r"}')
  t.ok(whole * 1000 >= GAP_MS, `the request lasted the upload (${(whole * 1000).toFixed(0)} ms)`)
  // The rest is upstream time: the try's connect (tens of ms on a loaded machine), not the upload's 2 gaps.
  t.ok((whole - overhead) * 1000 < GAP_MS, `the upload is overhead, not a wait for an answer (${(overhead * 1000).toFixed(1)} of ${(whole * 1000).toFixed(1)} ms)`)
})

t.test('an upstream that answers before the body ends: its response time counts from the dispatch', async t => {
  const gw = await gateway(t, (_req, res) => { setTimeout(() => res.end('early'), 2 * GAP_MS) }) // reads none of it
  const { socket, uploadMs } = await trickle(Number(new URL(gw.url).port), '/up')
  socket.destroy()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request')), 'its access line')
  const upstream = await metricValue(gw.adminUrl as string, 'portcullis_upstream_response_duration_seconds_sum{upstream="u"}')
  t.ok(upstream * 1000 >= 2 * GAP_MS * 0.9 && upstream * 1000 < uploadMs, `its own ${(upstream * 1000).toFixed(1)} ms to answer`)
})

// The write of a streamed body also waits while the target takes none of it (undici pauses the body
// on its backpressure): that is the target's delay, upstream time and p2c-ewma latency, not overhead.
// Counted as upload, a target that reads nothing for 1.5 s had a 1.6 ms latency and was preferred.
const STALL_MS = 500
const BIG = 16 * 1024 * 1024 // past the loopback's socket buffers: undici's writes come back full

t.test('a target that does not read the body: its stall is upstream time and latency, not overhead', async t => {
  const gw = await gateway(t, (req, res) => {
    if (req.url === '/warm') { res.end('ok'); return }
    setTimeout(() => { req.resume(); req.on('end', () => res.end('ok')) }, STALL_MS) // a target busy elsewhere
  })
  const admin = gw.adminUrl as string
  const series = 'portcullis_upstream_response_duration_seconds_sum{upstream="u"}'
  await (await request(`${gw.url}/warm`)).body.dump()
  const before = await metricValue(admin, series)
  const overheadBefore = await metricValue(admin, 'portcullis_gateway_overhead_seconds_sum{route="r"}')
  const res = await request(`${gw.url}/slowread`, { method: 'POST', body: Buffer.alloc(BIG, 'a') }) // at full speed
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.method === 'POST')), 'its access line (metrics counted first)')
  const upstream = await metricValue(admin, series) - before
  const overhead = await metricValue(admin, 'portcullis_gateway_overhead_seconds_sum{route="r"}') - overheadBefore
  // Not all of it: until the socket buffers are full the target's stall cannot be told from the
  // pace of a client in this same process, that shares the CPU with the copies.
  t.ok(upstream * 1000 >= STALL_MS * 0.7, `upstream response time ${(upstream * 1000).toFixed(1)} ms: the ${STALL_MS} ms the target read nothing`)
  t.ok(overhead * 1000 < STALL_MS / 2, `overhead ${(overhead * 1000).toFixed(1)} ms: not the target's stall`)
  const latency = await targetLatency(admin)
  t.ok(latency >= STALL_MS * 0.7, `the p2c-ewma latency is the same figure (${latency} ms)`)
})

for (const [kind, fails, answered] of [
  ['a 5xx', (res: ServerResponse) => { res.statusCode = 503; res.end('down') }, /^HTTP\/1\.1 503 /],
  ['a reset', (res: ServerResponse) => { res.socket?.destroy() }, /^HTTP\/1\.1 502 /]
] as const) t.test(`${kind} after a trickled upload: its failure latency is not the upload`, async t => {
  const gw = await gateway(t, (req, res) => {
    if (req.url === '/warm') { res.end('ok'); return }
    req.resume()
    req.on('end', () => fails(res))
  }, ', retries: false')
  await (await request(`${gw.url}/warm`)).body.dump()
  const { socket, uploadMs } = await trickle(Number(new URL(gw.url).port), '/up')
  const answer: Buffer[] = []
  socket.on('data', (c: Buffer) => answer.push(c))
  await once(socket, 'end')
  t.match(Buffer.concat(answer).toString(), answered, `answered for ${kind}, once the body was in`)
  const latency = await targetLatency(gw.adminUrl as string)
  t.ok(latency < uploadMs / 4, `the failure's latency sample (${latency} ms) is not the ${uploadMs.toFixed(0)} ms upload`)
})
