import t, { type Test } from 'tap'
import { connect, constants, type ClientHttp2Session } from 'node:http2'
import type { ServerResponse } from 'node:http'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { until } from '../helpers/wait.ts'
import { waitForLog } from '../helpers/logs.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { frame, h2Connect, h2Request, startH2Gateway } from '../helpers/http2.ts'


/** An upstream that holds every response until release() (then answers "done <url>"); counts what it received. */
async function holdingUpstream (t: Test): Promise<{ url: string, received: () => number, release: () => void }> {
  const held: Array<{ url: string, res: ServerResponse }> = []
  let received = 0
  let released = false
  const answer = (h: { url: string, res: ServerResponse }) => { if (!h.res.destroyed) h.res.end(`done ${h.url}`) }
  const up = await startUpstream((req, res) => {
    received++
    const h = { url: req.url as string, res }
    if (released) answer(h); else held.push(h)
  })
  t.teardown(() => up.close())
  return { url: up.url, received: () => received, release: () => { released = true; for (const h of held.splice(0)) answer(h) } }
}

/** Why the session ended: the GOAWAY error code it received. */
function goawayCode (session: ClientHttp2Session): Promise<number> {
  return new Promise(resolve => session.once('goaway', (code: number) => resolve(code)))
}

// Over h2c: Node's HTTP/2 client over TLS does not notice the connection's end while it floods.
const H2C = '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }'

t.test('rapid reset: a client that opens and cancels requests in a loop is sent GOAWAY ENHANCE_YOUR_CALM', async t => {
  const up = await holdingUpstream(t)
  const { gw, connect } = await startH2Gateway(t, H2C, catchAllYaml(up.url), { admin: true })
  const session = await connect({ h2c: true })
  session.on('error', () => {})
  const goaway = goawayCode(session)
  let opened = 0
  // At most 2,000: Node's own limit (nghttp2's, 1,000 resets) would end it with INTERNAL_ERROR instead.
  while (!session.closed && !session.destroyed && opened < 2_000) {
    for (let i = 0; i < 20 && !session.closed && !session.destroyed; i++, opened++) {
      const stream = session.request({ ':path': `/r${opened}` })
      stream.on('error', () => {})
      stream.close(constants.NGHTTP2_CANCEL)
    }
    await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(await goaway, constants.NGHTTP2_ENHANCE_YOUR_CALM, 'GOAWAY ENHANCE_YOUR_CALM')
  t.ok(opened < 2_000, `cut off after ${opened} cancelled requests`)
  t.ok(up.received() < 1_000, `the upstream saw ${up.received()} of them, fewer than Node's own limit would let through`)
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="rapid_reset"}'), 1)
  t.ok(gw.logs.some(l => l.level === 40 && l.reason === 'rapid_reset'), 'logged as a warning')
  // Only that connection: another client is served.
  up.release()
  const other = await connect()
  t.equal((await h2Request(other, { ':path': '/after' })).body.toString(), 'done /after')
})

t.test('cancelling fewer requests than the burst is fine', async t => {
  const up = await holdingUpstream(t)
  const { connect } = await startH2Gateway(t, '{ rapidReset: { burst: 30, perSecond: 1 } }', catchAllYaml(up.url))
  const session = await connect()
  for (let i = 0; i < 25; i++) {
    const stream = session.request({ ':path': `/c${i}` })
    stream.on('error', () => {})
    stream.close(constants.NGHTTP2_CANCEL)
  }
  up.release()
  t.equal((await h2Request(session, { ':path': '/still' })).body.toString(), 'done /still', 'the connection still serves')
  t.notOk(session.closed, 'no GOAWAY')
})

t.test('settings flood: a client that sends SETTINGS frames in a loop is sent GOAWAY ENHANCE_YOUR_CALM', async t => {
  const up = await holdingUpstream(t)
  const { gw, connect } = await startH2Gateway(t, H2C, catchAllYaml(up.url), { admin: true })
  const session = await connect({ h2c: true, maxOutstandingSettings: 10_000 })
  session.on('error', () => {})
  const goaway = goawayCode(session)
  let sent = 0
  while (!session.closed && !session.destroyed && sent < 1_000) {
    session.settings({ enablePush: false })
    sent++
    if (sent % 10 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(await goaway, constants.NGHTTP2_ENHANCE_YOUR_CALM)
  t.ok(sent < 1_000, `cut off after ${sent} SETTINGS frames`)
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="settings_flood"}'), 1)
})

t.test('a cut of one kind right after one of another: both are logged (the warnings are throttled per kind)', async t => {
  const up = await holdingUpstream(t)
  const limits = '{ h2c: { listen: { host: 127.0.0.1, port: 0 } }, rapidReset: { burst: 5, perSecond: 1 }, settingsFlood: { burst: 5, perSecond: 1 } }'
  const { gw, connect } = await startH2Gateway(t, limits, catchAllYaml(up.url))
  const flooder = await connect({ h2c: true, maxOutstandingSettings: 1_000 })
  flooder.on('error', () => {})
  const flooded = goawayCode(flooder)
  for (let i = 0; i < 20 && !flooder.closed && !flooder.destroyed; i++) flooder.settings({ enablePush: false })
  t.equal(await flooded, constants.NGHTTP2_ENHANCE_YOUR_CALM)
  const resetter = await connect({ h2c: true })
  resetter.on('error', () => {})
  const reset = goawayCode(resetter)
  for (let i = 0; i < 20 && !resetter.closed && !resetter.destroyed; i++) {
    const stream = resetter.request({ ':path': `/r${i}` })
    stream.on('error', () => {})
    stream.close(constants.NGHTTP2_CANCEL)
  }
  t.equal(await reset, constants.NGHTTP2_ENHANCE_YOUR_CALM)
  const warned = (reason: string) => gw.logs.some(l => l.level === 40 && l.reason === reason)
  t.ok(await until(() => warned('settings_flood') && warned('rapid_reset')), 'both warnings logged')
})

t.test('max concurrent streams: past the limit a stream is refused (REFUSED_STREAM), the others are served', async t => {
  const up = await holdingUpstream(t)
  const { gw, ca } = await startH2Gateway(t, '{ maxConcurrentStreams: 2 }', catchAllYaml(up.url))
  // Requested before the connection is up: they leave in the first flight, before the client
  // knows the gateway's SETTINGS, as a client ignoring them would send them.
  const session = connect(gw.url, { ca: ca.cert })
  t.teardown(() => session.destroy())
  const outcomes = [0, 1, 2].map(i => h2Request(session, { ':path': `/s${i}` }).then(r => r.body.toString(), (err: { code?: string, message: string }) => err.message))
  await until(() => up.received() === 2)
  const third = await outcomes[2]
  t.match(third, /NGHTTP2_REFUSED_STREAM/, 'the third is refused')
  up.release()
  t.same(await Promise.all(outcomes.slice(0, 2)), ['done /s0', 'done /s1'])
  t.equal(up.received(), 2, 'the refused one never reached the upstream')
})

t.test('max header list size: a larger request header list is refused before routing', async t => {
  const up = await holdingUpstream(t)
  up.release()
  const { connect } = await startH2Gateway(t, '{ maxHeaderListSize: 4096 }', catchAllYaml(up.url))
  const session = await connect()
  session.on('error', () => {})
  const small = await h2Request(session, { ':path': '/small', 'x-pad': 'a'.repeat(3_000) })
  t.equal(small.body.toString(), 'done /small')
  const big = await h2Request(session, { ':path': '/big', 'x-pad': 'a'.repeat(5_000) }).then(r => r.status, (err: Error) => err.message)
  t.not(big, 200, `refused: ${big}`)
  t.equal(up.received(), 1, 'never reached the upstream')
})

t.test('max header list size: many small fields count 32 bytes each, and a reload raising the limit lets them in', async t => {
  const up = await holdingUpstream(t)
  up.release()
  const { gw, file, connect } = await startH2Gateway(t, '{ maxHeaderListSize: 16384 }', catchAllYaml(up.url))
  // 700 fields of a few bytes: some 27 KB as HTTP/2 counts them, far more fields than 16384 / 32.
  const fields = Object.fromEntries(Array.from({ length: 700 }, (_, i) => [`x-h${i}`, 'v']))
  const before = await connect()
  before.on('error', () => {})
  const refused = await h2Request(before, { ':path': '/many', ...fields }).then(r => r.status, (err: Error) => err.message)
  t.not(refused, 200, `refused under 16384: ${refused}`)
  writeFileSync(file, readFileSync(file, 'utf8').replace('maxHeaderListSize: 16384', 'maxHeaderListSize: 65536'))
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  const after = await connect()
  const res = await h2Request(after, { ':path': '/many', ...fields })
  t.equal(res.body.toString(), 'done /many', 'a connection opened after the reload takes them')
  t.equal(up.received(), 1, 'the refused one never reached the upstream')
})

/** HPACK (RFC 7541 5.1): `value` as an integer with an `n`-bit prefix, `first` holding the bits above it. */
function hpackInt (first: number, n: number, value: number): number[] {
  const max = (1 << n) - 1
  if (value < max) return [first | value]
  const out = [first | max]
  for (value -= max; value >= 128; value >>= 7) out.push((value & 127) | 128)
  return [...out, value]
}

const hpackString = (s: string): number[] => [...hpackInt(0, 7, s.length), ...Buffer.from(s, 'latin1')]

t.test('max header list size: a client that never acknowledges SETTINGS cannot send a larger list (431, its connection cut)', async t => {
  const up = await holdingUpstream(t)
  up.release()
  const { gw } = await startH2Gateway(t, H2C, catchAllYaml(up.url))
  // GET http://localhost/, then x-big: 4,000 bytes, indexed once (dynamic entry 62) and referenced 500 times:
  // a 4.6 KB HEADERS frame for a 2 MB header list.
  const block = Buffer.from([0x82, 0x86, 0x84, 0x01, ...hpackString('localhost'), 0x40, ...hpackString('x-big'), ...hpackString('a'.repeat(4_000)),
    ...new Array<number>(500).fill(0x80 | 62)])
  const socket = netConnect(Number(new URL(gw.h2cUrl as string).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let closed = false
  socket.once('close', () => { closed = true })
  socket.resume()
  // The preface and an empty SETTINGS, never an ACK of the server's: Node's own limit is not in force yet.
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, block)]))
  t.ok(await until(() => gw.logs.some(l => l.error === 'headers_too_large')), 'refused by the gateway')
  t.match(gw.logs.find(l => l.error === 'headers_too_large'), { status: 431, protocol: 'HTTP/2', path: '/' })
  // Its 431 may or may not go out first: the connection is cut at once (see http2-header-list-unacked.test.ts).
  t.ok(await until(() => closed), 'the connection cut')
  t.equal(up.received(), 0, 'never reached the upstream')
})

t.test('max header list size: before SETTINGS are acknowledged, a list of more fields than the size allows never reaches the gateway', async t => {
  const up = await holdingUpstream(t)
  up.release()
  const { gw } = await startH2Gateway(t, H2C, catchAllYaml(up.url))
  // x-big: 4,000 bytes, indexed once on stream 1 (dynamic entry 62), then referenced 2,000 times on
  // each stream: 2 KB of HPACK for an 8 MB header list of 2,004 fields, past the 516 of 16384 bytes.
  const refs = new Array<number>(2_000).fill(0x80 | 62)
  const head = [0x82, 0x86, 0x84, 0x01, ...hpackString('localhost')]
  const streams = Array.from({ length: 20 }, (_, i) => 2 * i + 1)
  const flood = streams.map(id => frame(1, 0x5, id, Buffer.from([...head, ...(id === 1 ? [0x40, ...hpackString('x-big'), ...hpackString('a'.repeat(4_000))] : []), ...refs])))
  const socket = netConnect(Number(new URL(gw.h2cUrl as string).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  const frames = serverFrames(socket)
  // The preface and an empty SETTINGS, never an ACK of the server's.
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), ...flood]))
  const answered = (id: number) => frames.some(f => f.stream === id && (f.type === 3 || f.type === 1))
  t.ok(await until(() => streams.every(answered)), 'every stream answered')
  const resets = frames.filter(f => f.type === 3)
  t.equal(resets.length, streams.length, 'each stream reset by Node')
  t.ok(resets.every(f => f.payload.readUInt32BE(0) === constants.NGHTTP2_ENHANCE_YOUR_CALM), 'ENHANCE_YOUR_CALM')
  // A plain GET after them: logged once answered, as a 431 of the flood would have been before it.
  socket.write(frame(1, 0x5, 41, Buffer.from(head)))
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/' }), { status: 200 }, 'the connection serves on')
  t.same(gw.logs.filter(l => l.msg === 'request').map(l => l.status), [200], 'only the plain GET reached the gateway (no 431 built from megabytes of fields)')
})

/** The frames `socket` receives, as they come. */
function serverFrames (socket: Socket): Array<{ type: number, stream: number, payload: Buffer }> {
  const frames: Array<{ type: number, stream: number, payload: Buffer }> = []
  let pending = Buffer.alloc(0)
  socket.on('data', (c: Buffer) => {
    pending = Buffer.concat([pending, c])
    while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
      const length = pending.readUIntBE(0, 3)
      frames.push({ type: pending[3] as number, stream: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + length) })
      pending = pending.subarray(9 + length)
    }
  })
  return frames
}

t.test('server.maxConnections holds on the h2c listener too', async t => {
  const up = await holdingUpstream(t)
  up.release()
  const { gw } = await startH2Gateway(t, H2C, catchAllYaml(up.url), { server: '  maxConnections: 2\n' })
  const sessions = await Promise.all([0, 1, 2, 3].map(() => h2Connect(gw.h2cUrl as string).then(s => { t.teardown(() => s.destroy()); s.on('error', () => {}); return s }, () => undefined)))
  const served = await Promise.all(sessions.map(async (s, i) => s === undefined ? 0 : await h2Request(s, { ':path': `/c${i}` }).then(r => r.status === 200 ? 1 : 0, () => 0)))
  t.equal(served.reduce((a: number, b) => a + b, 0), 2, 'two of the four connections are served')
  t.ok(await until(() => gw.logs.some(l => l.level === 40 && l.maxConnections === 2)), 'the dropped ones are logged')
})

t.test('keepAliveTimeout: a connection with a stream open is not idle; once its streams end, it is', async t => {
  const up = await holdingUpstream(t)
  const { connect } = await startH2Gateway(t, H2C, catchAllYaml(up.url), { server: '  keepAliveTimeout: 200ms\n' })
  const session = await connect({ h2c: true })
  session.on('error', () => {})
  let goaway = false
  void goawayCode(session).then(() => { goaway = true })
  const slow = h2Request(session, { ':path': '/slow' })
  await until(() => up.received() === 1)
  await new Promise(resolve => setTimeout(resolve, 600)) // three idle timeouts of silence, the stream open
  t.notOk(goaway, 'no GOAWAY while a stream is open')
  const next = h2Request(session, { ':path': '/next' })
  await until(() => up.received() === 2)
  up.release()
  t.same((await Promise.all([slow, next])).map(r => r.body.toString()), ['done /slow', 'done /next'], 'both served on that connection')
  t.ok(await until(() => goaway), 'idle afterwards: GOAWAY')
})

t.test('keepAliveTimeout: a connection whose headers never end is closed (h2c and TLS)', async t => {
  const up = await holdingUpstream(t)
  const { gw, ca } = await startH2Gateway(t, H2C, catchAllYaml(up.url), { server: '  keepAliveTimeout: 200ms\n' })
  // GET http://localhost/: a HEADERS frame without END_HEADERS (no CONTINUATION follows), and one cut partway through.
  const block = Buffer.from([0x82, 0x86, 0x84, 0x01, ...hpackString('localhost')])
  const open = frame(1, 0x1, 1, block)
  const cut = frame(1, 0x5, 1, block).subarray(0, 9 + 3)
  const h2c = netConnect(Number(new URL(gw.h2cUrl as string).port), '127.0.0.1')
  const tls = tlsConnect({ host: '127.0.0.1', port: Number(new URL(gw.url).port), ca: ca.cert, ALPNProtocols: ['h2'] })
  const clients = [{ socket: h2c, headers: open, name: 'h2c, no END_HEADERS' }, { socket: tls, headers: cut, name: 'TLS, cut short' }]
  for (const { socket, headers } of clients) {
    t.teardown(() => socket.destroy())
    socket.on('error', () => {})
    socket.resume()
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), headers]))
  }
  // Idle for 200 ms, then GOAWAY and a linger of 2 s: held for ever before.
  for (const { socket, name } of clients) t.ok(await until(() => socket.closed, 15_000), `${name}: closed by the gateway`)
  t.equal(up.received(), 0)
})

t.test('shutdown: GOAWAY, the request in flight finishes, no new stream on that connection', async t => {
  const up = await holdingUpstream(t)
  const { gw, connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url), { server: '  shutdownTimeout: 10s\n' })
  const session = await connect()
  session.on('error', () => {})
  const inflight = h2Request(session, { ':path': '/long' })
  await until(() => up.received() === 1)
  const goaway = goawayCode(session)
  const closed = gw.close()
  t.equal(await goaway, constants.NGHTTP2_NO_ERROR, 'GOAWAY NO_ERROR')
  const late = await h2Request(session, { ':path': '/late' }).then(r => r.status, (err: { code?: string }) => err.code)
  t.equal(late, 'ERR_HTTP2_GOAWAY_SESSION', 'no new stream after GOAWAY')
  up.release()
  const r = await inflight
  t.equal(r.status, 200)
  t.equal(r.body.toString(), 'done /long', 'the stream in flight finished')
  await closed
  t.equal(up.received(), 1)
  t.ok(await until(() => session.destroyed), 'the connection is closed')
})

// Slow readers: a stream cut after clientTimeouts.send is reset alone, unless the client reads
// nothing of the connection at all (it answers no PING): then the connection is reset too.

/** An upstream streaming 16 MiB for /big (more than loopback socket buffers hold), "ok" otherwise. */
async function bigUpstream (t: Test): Promise<string> {
  const chunk = Buffer.alloc(64 * 1024, 'x')
  const up = await startUpstream((req, res) => {
    if (req.url !== '/big') { res.end('ok'); return }
    let left = 256
    const more = () => {
      while (left-- > 0) if (!res.write(chunk)) { res.once('drain', more); return }
      res.end()
    }
    more()
  })
  t.teardown(() => up.close())
  return up.url
}

type H2 = Awaited<ReturnType<typeof startH2Gateway>>
const listenerPort = (h2: H2, h2c: boolean) => Number(new URL(h2c ? h2.gw.h2cUrl as string : h2.gw.url).port)

/** A raw HTTP/2 connection to the gateway (TLS with ALPN h2, or h2c) with the preface written; resolves once connected. */
async function rawH2 (t: Test, h2: H2, h2c: boolean): Promise<Socket> {
  const port = listenerPort(h2, h2c)
  const socket = h2c ? netConnect(port, '127.0.0.1') : tlsConnect({ host: '127.0.0.1', port, ca: h2.ca.cert, ALPNProtocols: ['h2'] })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, h2c ? 'connect' : 'secureConnect')
  socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))
  return socket
}

/** SETTINGS with one INITIAL_WINDOW_SIZE: every stream's window. */
function initialWindow (size: number): Buffer {
  const payload = Buffer.alloc(6)
  payload.writeUInt16BE(4, 0)
  payload.writeUInt32BE(size, 2)
  return frame(4, 0, 0, payload)
}

/** A WINDOW_UPDATE of `increment` on `stream` (0: the connection). */
function windowUpdate (stream: number, increment: number): Buffer {
  const payload = Buffer.alloc(4)
  payload.writeUInt32BE(increment, 0)
  return frame(8, 0, stream, payload)
}

/** HEADERS GET `path` (END_STREAM, END_HEADERS) on `stream`. */
const get = (stream: number, path: string, h2c: boolean): Buffer =>
  frame(1, 0x5, stream, Buffer.from([0x82, h2c ? 0x86 : 0x87, 0x04, ...hpackString(path), 0x01, ...hpackString('localhost')]))

/** The gateway's side (local `port`) of the connection from `client`, as the kernel holds it: its Send-Q in bytes; undefined once gone, in any state. */
function gatewaySide (port: number, client: Socket): number | undefined {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const remote = `:${(client.localPort as number).toString(16).toUpperCase().padStart(4, '0')}`
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(1) : []
    for (const row of rows) {
      const [, l, r, , queues] = row.trim().split(/\s+/)
      if (l?.endsWith(local) === true && r?.endsWith(remote) === true) return parseInt(queues?.split(':')[0] ?? '0', 16)
    }
  }
  return undefined
}

/** A client that never reads: GET /big on `socket`, windows opened wide (only the socket holds the answer back). */
function neverReads (socket: Socket, h2c: boolean): void {
  socket.pause()
  socket.write(Buffer.concat([initialWindow(2 ** 31 - 1), windowUpdate(0, 2 ** 31 - 1 - 65_535), get(1, '/big', h2c)]))
}

for (const h2c of [false, true]) {
  const over = h2c ? 'h2c' : 'TLS'
  t.test(`slow reader (${over}): a client that reads nothing of its connection loses it, not only the stream`, async t => {
    const url = await bigUpstream(t)
    // The default keep-alive timeout (72 s): nothing but the cut ends the connection within the test.
    const h2 = await startH2Gateway(t, H2C, catchAllYaml(url), { server: '  clientTimeouts: { send: 300ms }\n' })
    const socket = await rawH2(t, h2, h2c)
    neverReads(socket, h2c)
    t.match(await waitForLog(h2.gw.logs, { msg: 'request', path: '/big' }, 10_000), { status: 200, error: 'client_send_timeout' })
    // Reset: the megabytes the client never took are dropped with it (no ESTABLISHED nor FIN-WAIT-1 left).
    t.ok(await until(() => gatewaySide(listenerPort(h2, h2c), socket) === undefined, 10_000), 'the gateway\'s side of the connection is gone')
  })

  t.test(`slow reader (${over}): a client that holds back one stream's window but reads the connection keeps it`, async t => {
    const url = await bigUpstream(t)
    // 1 s: the client's PING answer is read in this process's event loop, which a loaded machine stalls for a while.
    const h2 = await startH2Gateway(t, H2C, catchAllYaml(url), { server: '  clientTimeouts: { send: 1s }\n' })
    const socket = await rawH2(t, h2, h2c)
    const frames: Array<{ type: number, flags: number, stream: number, payload: Buffer }> = []
    let pending = Buffer.alloc(0)
    socket.on('data', (c: Buffer) => {
      pending = Buffer.concat([pending, c])
      while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
        const f = { type: pending[3] as number, flags: pending[4] as number, stream: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + pending.readUIntBE(0, 3)) }
        pending = pending.subarray(9 + f.payload.length)
        frames.push(f)
        // A client's library answers PING and SETTINGS, whatever its streams do.
        if (f.type === 6 && (f.flags & 1) === 0) socket.write(frame(6, 1, 0, f.payload))
        if (f.type === 4 && (f.flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0)))
      }
    })
    // Stream windows of 1 KiB, never opened further.
    socket.write(Buffer.concat([initialWindow(1024), get(1, '/big', h2c)]))
    t.match(await waitForLog(h2.gw.logs, { msg: 'request', path: '/big' }, 10_000), { status: 200, error: 'client_send_timeout' })
    t.ok(await until(() => frames.some(f => f.type === 3 && f.stream === 1)), 'the stream is reset')
    // Past the PING's answer time (clientTimeouts.send) with a margin: asserts that nothing cuts the connection meanwhile.
    await new Promise(resolve => setTimeout(resolve, 2_500))
    t.notOk(socket.destroyed, 'the connection is open')
    socket.write(get(3, '/small', h2c))
    t.ok(await until(() => frames.some(f => f.type === 0 && f.stream === 3 && (f.flags & 1) === 1)), 'another request on it is answered')
    t.equal(Buffer.concat(frames.filter(f => f.type === 0 && f.stream === 3).map(f => f.payload)).toString(), 'ok')
  })
}

// TLS: over h2c Node reads nothing from a connection while its write to it is stuck, and never sees the cancel.
// Intermittent (2 of about 8 clean-clone runs, quiet machine, 30 s bounds): the gateway logged no 499 and kept the
// connection; passes alone. A held connection to find, not a timing bound: kept running, reported as todo until fixed.
t.test('a client that reads nothing and cancels its stream: its connection is reset once idle', { todo: 'intermittent: at times neither the cancel nor the idle reset is seen' }, async t => {
  const url = await bigUpstream(t)
  // No send timeout: no cut. The stream ends by the client's hand, the connection by the idle timeout.
  const h2 = await startH2Gateway(t, 'true', catchAllYaml(url), { server: '  keepAliveTimeout: 1s\n  clientTimeouts: { send: 0s }\n' })
  const socket = await rawH2(t, h2, false)
  neverReads(socket, false)
  const port = listenerPort(h2, false)
  t.ok(await until(() => (gatewaySide(port, socket) ?? 0) > 1024 * 1024, 10_000), 'the kernel holds megabytes the client has not read')
  socket.write(frame(3, 0, 1, Buffer.from([0, 0, 0, 8]))) // RST_STREAM CANCEL
  // Bounds for a loaded machine (a clean-clone run once took over 10 s here); the events end the waits.
  t.match(await waitForLog(h2.gw.logs, { msg: 'request', path: '/big' }, 30_000), { status: 499 })
  // Idle 1 s, GOAWAY, destroyed 2 s later, reset 2 s after that: Node's destroy waited for the socket for ever.
  t.ok(await until(() => gatewaySide(port, socket) === undefined, 30_000), 'the gateway\'s side of the connection is gone')
})
