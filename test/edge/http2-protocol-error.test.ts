import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { constants } from 'node:http2'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { frame, startH2Gateway, type H2Gateway } from '../helpers/http2.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { until } from '../helpers/wait.ts'

// A frame nghttp2 takes as a connection error gets GOAWAY from nghttp2 itself, which Node 20 never
// reported (no event, the session not even closed) and after which it read nothing more: the
// client's leaving went unseen, and its streams' upstream requests ran on (then held the send
// timeout and logged 200). Now such a connection is dropped, its requests aborted (499).

const H2C = '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }'
const STREAMS = 3

const hpackString = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')]

/** HEADERS GET /slow/`stream` (END_STREAM, END_HEADERS). */
const get = (stream: number, h2c: boolean): Buffer =>
  frame(1, 0x5, stream, Buffer.from([0x82, h2c ? 0x86 : 0x87, 0x04, ...hpackString(`/slow/${stream}`), 0x01, ...hpackString('localhost')]))

const { NGHTTP2_PROTOCOL_ERROR: PROTOCOL_ERROR, NGHTTP2_FRAME_SIZE_ERROR: FRAME_SIZE_ERROR } = constants

/**
 * Malformed frames, each a connection error, and the GOAWAY code nghttp2 answers it with. (Not a
 * PRIORITY depending on itself: Node 24's nghttp2 ignores PRIORITY frames.)
 */
const malformed: Record<string, [Buffer, number]> = {
  'DATA on stream 0': [frame(0, 0, 0, Buffer.from('x')), PROTOCOL_ERROR],
  'PING of 7 bytes': [frame(6, 0, 0, Buffer.alloc(7)), FRAME_SIZE_ERROR],
  'SETTINGS of 5 bytes': [frame(4, 0, 0, Buffer.alloc(5)), FRAME_SIZE_ERROR],
  'a frame over the maximum size': [frame(0, 0, 1, Buffer.alloc(16_385)), FRAME_SIZE_ERROR]
}

/** An upstream that never answers: the requests it has, and those the gateway dropped. */
async function silentUpstream (t: Test): Promise<{ url: string, received: () => number, aborted: () => number }> {
  let received = 0
  let aborted = 0
  const up = await startUpstream((_req, res) => {
    received++
    res.on('close', () => aborted++)
  })
  t.teardown(() => up.close())
  return { url: up.url, received: () => received, aborted: () => aborted }
}

/** A raw HTTP/2 connection (h2c, or TLS with ALPN h2): the preface, SETTINGS, STREAMS requests; the code of the server's GOAWAY once one came. */
async function rawClient (t: Test, h2: H2Gateway, h2c: boolean): Promise<{ socket: Socket, goaway: () => number | undefined }> {
  const port = Number(new URL(h2c ? h2.gw.h2cUrl as string : h2.gw.url).port)
  const socket = h2c ? netConnect(port, '127.0.0.1') : tlsConnect({ host: '127.0.0.1', port, ca: h2.ca.cert, ALPNProtocols: ['h2'] })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, h2c ? 'connect' : 'secureConnect')
  let goaway: number | undefined
  let pending = Buffer.alloc(0)
  socket.on('data', (c: Buffer) => {
    pending = Buffer.concat([pending, c])
    while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
      if (pending[3] === 7) goaway = pending.readUInt32BE(9 + 4)
      pending = pending.subarray(9 + pending.readUIntBE(0, 3))
    }
  })
  const requests = Array.from({ length: STREAMS }, (_, i) => get(2 * i + 1, h2c))
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), ...requests]))
  return { socket, goaway: () => goaway }
}

async function slowRequestsThenBadFrame (t: Test, h2c: boolean, bad: Buffer, code: number, leave: (socket: Socket) => void): Promise<void> {
  const up = await silentUpstream(t)
  const h2 = await startH2Gateway(t, H2C, catchAllYaml(up.url), { admin: true })
  const { socket, goaway } = await rawClient(t, h2, h2c)
  t.ok(await until(() => up.received() === STREAMS, 10_000), 'the upstream has every request')
  socket.write(bad)
  t.ok(await until(() => goaway() !== undefined, 10_000), 'nghttp2 answers GOAWAY')
  t.equal(goaway(), code, 'its code')
  leave(socket)
  t.ok(await until(() => up.aborted() === STREAMS, 10_000), 'every upstream request is aborted')
  const logged = () => h2.gw.logs.filter(l => l.msg === 'request')
  t.ok(await until(() => logged().length === STREAMS, 10_000), 'every request is logged')
  t.same(logged().map(l => l.status), Array(STREAMS).fill(499), 'logged as the client gone')
  t.equal(h2.gw.gateway.runtime.inFlight, 0, 'none in flight')
  t.equal(await metricValue(h2.gw.adminUrl as string, 'portcullis_http_requests_total{route="all",method="GET",status="499"}'), STREAMS, 'counted 499')
}

for (const [name, [bad, code]] of Object.entries(malformed)) {
  t.test(`h2c, ${name}, then the client leaves: its requests are aborted upstream, logged 499`, async t => {
    await slowRequestsThenBadFrame(t, true, bad, code, socket => socket.destroy())
  })
}

t.test('TLS, DATA on stream 0, then the client leaves: its requests are aborted upstream, logged 499', async t => {
  await slowRequestsThenBadFrame(t, false, malformed['DATA on stream 0']?.[0] as Buffer, PROTOCOL_ERROR, socket => socket.destroy())
})

t.test('h2c, DATA on stream 0, the client keeps its side open: the gateway closes the connection', async t => {
  let socket: Socket | undefined
  await slowRequestsThenBadFrame(t, true, malformed['DATA on stream 0']?.[0] as Buffer, PROTOCOL_ERROR, s => { socket = s })
  t.ok(await until(() => socket?.readableEnded === true, 10_000), 'the gateway ended the connection')
})
