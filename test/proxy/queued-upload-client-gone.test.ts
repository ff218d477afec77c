import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { constants as h2 } from 'node:http2'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Connect, h2Request } from '../helpers/http2.ts'
import { callUntil } from '../helpers/wait.ts'
import { answerDigest, digest } from '../helpers/digest-upstream.ts'

// Uploads wait for an upstream's only connection; their clients leave (FIN, RST, an HTTP/2 reset
// or closed connection) having sent part or all of a streamed body. They leave the queue then, not
// once admitted; a live upload queued behind them is sent next, its body whole. Over HTTP/1.1 the
// gateway reads a waiting body on up to requestBuffer (256 KiB here: past Node's own read-ahead,
// 64 KiB since Node 22), so the FIN or RST behind what the client sent is seen.

const SENT = 150 * 1024

interface Rig { gw: TestGateway, port: number, queued: () => Promise<number>, release: () => void, held: Promise<string>, paths: string[] }

async function rig (t: Test): Promise<Rig> {
  let release = (): void => {}
  let seen = (): void => {}
  const holding = new Promise<void>(resolve => { seen = resolve })
  const paths: string[] = []
  const up = await startUpstream((req, res) => {
    paths.push(req.url as string)
    if (req.url === '/hold') { req.resume(); release = () => res.end('held'); seen(); return }
    answerDigest(req, res)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  slow: { connections: 1, requestBuffer: 256KiB, targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: slow }
`, { admin: true })
  t.teardown(() => gw.close())
  const held = request(`${gw.url}/hold`).then(async r => await r.body.text())
  await holding
  const queued = async (): Promise<number> => {
    const r = await request(`${gw.adminUrl as string}/upstreams`)
    return ((await r.body.json()) as { upstreams: Array<{ targets: Array<{ queued: number }> }> }).upstreams[0]!.targets[0]!.queued
  }
  return { gw, port: Number(new URL(gw.url).port), queued, release: () => release(), held, paths }
}

/** A client on a raw socket: `head` lines, then `body` written, once handed to the kernel. */
async function sendPart (port: number, head: string[], body: Buffer): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  s.on('error', () => {})
  await once(s, 'connect')
  s.write(`${head.join('\r\n')}\r\n\r\n`)
  await new Promise(resolve => s.write(body, resolve))
  return s
}

/** Polls GET /upstreams until `n` requests wait. */
async function waitQueued (r: Rig, n: number): Promise<boolean> {
  let last = -1
  return await callUntil(async () => { last = await r.queued() }, () => last === n, 10_000)
}

/** Live uploads queued behind the others: one of 1 MiB (Content-Length), one chunked; their answers. */
function liveUploads (r: Rig): { sent: Buffer[], answers: Promise<Array<{ status: number, body: string }>> } {
  const big = randomBytes(1024 * 1024)
  const chunked = randomBytes(100 * 1024)
  const answers = Promise.all([
    request(`${r.gw.url}/live-big`, { method: 'POST', body: big }),
    request(`${r.gw.url}/live-chunked`, { method: 'POST', body: Readable.from([chunked.subarray(0, 50_000), chunked.subarray(50_000)]) })
  ].map(async p => { const res = await p; return { status: res.statusCode, body: await res.body.text() } }))
  return { sent: [big, chunked], answers }
}

t.test('HTTP/1.1: queued uploads whose clients left (FIN, RST; part or all of the body sent) leave the queue at once', async t => {
  const r = await rig(t)
  const part = randomBytes(SENT)
  const dead = [
    await sendPart(r.port, ['POST /dead-part HTTP/1.1', 'Host: x', 'Content-Length: 1048576'], part),
    await sendPart(r.port, ['POST /dead-whole HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'],
      Buffer.concat([Buffer.from(`${SENT.toString(16)}\r\n`), part, Buffer.from('\r\n0\r\n\r\n')])),
    await sendPart(r.port, ['POST /dead-reset HTTP/1.1', 'Host: x', 'Content-Length: 1048576'], part)
  ]
  t.ok(await waitQueued(r, 3), 'the three wait')
  const live = liveUploads(r)
  t.ok(await waitQueued(r, 5), 'the live uploads wait behind them')
  dead[0]!.destroy()
  dead[1]!.destroy()
  dead[2]!.resetAndDestroy()
  t.ok(await waitQueued(r, 2), 'the clients gone leave the queue while the held request is still in flight')
  r.release()
  t.equal(await r.held, 'held')
  t.same(await live.answers, live.sent.map(b => ({ status: 200, body: digest(b) })), 'the live uploads are sent next, their bodies whole')
  t.same(r.paths, ['/hold', '/live-big', '/live-chunked'], 'none of the clients gone reached the upstream')
  const gone = r.gw.logs.filter(l => String(l.path).startsWith('/dead')).map(l => `${String(l.path)} ${String(l.status)}`).sort()
  t.same(gone, ['/dead-part 499', '/dead-reset 499', '/dead-whole 499'], 'each logged as its client gone')
})

t.test('HTTP/2 (h2c): a queued upload reset (RST_STREAM) or whose connection closed leaves the queue at once', async t => {
  const r = await rig(t)
  const sessions = await Promise.all([h2Connect(r.gw.h2cUrl as string), h2Connect(r.gw.h2cUrl as string)])
  t.teardown(() => { for (const s of sessions) s.destroy() })
  const streams = sessions.map((s, i) => {
    const stream = s.request({ ':method': 'POST', ':path': `/dead-${i}` })
    stream.on('error', () => {})
    stream.write(randomBytes(SENT))
    return stream
  })
  t.ok(await waitQueued(r, 2), 'both wait')
  const body = randomBytes(300 * 1024)
  const live = h2Request(sessions[0]!, { ':method': 'POST', ':path': '/live-h2' }, body)
  t.ok(await waitQueued(r, 3), 'a live upload waits behind them')
  streams[0]!.close(h2.NGHTTP2_CANCEL)
  sessions[1]!.destroy()
  t.ok(await waitQueued(r, 1), 'both leave the queue while the held request is still in flight')
  r.release()
  t.equal(await r.held, 'held')
  const res = await live
  t.equal(res.status, 200)
  t.equal(res.body.toString(), digest(body), 'its body whole')
  t.same(r.paths, ['/hold', '/live-h2'], 'neither reached the upstream')
})
