import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { constants } from 'node:http2'
import { echo, startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { frame } from '../helpers/http2.ts'
import { until } from '../helpers/wait.ts'
import { waitForLog } from '../helpers/logs.ts'

// Before a client acknowledges the gateway's SETTINGS, Node checks only the number of fields of a
// header list (516 for maxHeaderListSize 16384), not its size: a value indexed once and referenced
// 500 times is a 2 MB list from 4.6 KB of HPACK, each built into header objects and a 431. A client
// that never acknowledged made every stream of every burst cost that (2.5 CPU-s per MB sent). Its
// connection is now cut at the first such list, the rest of the burst never decoded. A list as large
// as the bytes that carried it (a browser's first requests, a large cookie) is refused on its own
// stream only: cutting the connection for it cut the client's other first requests too, logged 499.

const hpackInt = (flags: number, prefix: number, n: number): number[] => {
  const max = (1 << prefix) - 1
  if (n < max) return [flags | n]
  const out = [flags | max]
  for (n -= max; n >= 128; n >>= 7) out.push((n & 127) | 128)
  return [...out, n]
}
const hpackString = (s: string): number[] => [...hpackInt(0, 7, s.length), ...Buffer.from(s, 'latin1')]
/** GET http://localhost/ (static :method, :scheme; :path / ; :authority localhost as a literal never indexed). */
const GET = [0x82, 0x86, 0x84, 0x01, ...hpackString('localhost')]
/** GET http://localhost`path` (:path a literal not indexed). */
const get = (path: string): number[] => [0x82, 0x86, 0x04, ...hpackString(path), 0x01, ...hpackString('localhost')]
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

/** `socket`: a raw connection to the h2c listener; the upstream echoes, but never answers /slow (`slow`: it came). */
async function gateway (t: Test): Promise<{ gw: TestGateway, socket: () => Promise<Socket>, slow: () => boolean }> {
  let slow = false
  const up = await startUpstream((req, res) => { if (req.url === '/slow') slow = true; else echo(req, res) })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`, { admin: true })
  t.teardown(() => gw.close())
  const socket = async (): Promise<Socket> => {
    const s = connect(Number(new URL(gw.h2cUrl as string).port), '127.0.0.1')
    t.teardown(() => s.destroy())
    s.on('error', () => {})
    s.resume()
    await once(s, 'connect')
    return s
  }
  return { gw, socket, slow: () => slow }
}

t.test('before SETTINGS are acknowledged, a header list over maxHeaderListSize cuts the connection: the rest of the burst is never decoded', async t => {
  const { gw, socket } = await gateway(t)
  const s = await socket()
  let closed = false
  s.once('close', () => { closed = true })
  const received: Buffer[] = []
  s.on('data', (c: Buffer) => received.push(c))
  // 50 streams in one write, each a 400 KB header list: x-big (4,000 bytes, indexed on stream 1) referenced 100 times.
  const refs = new Array<number>(100).fill(0x80 | 62)
  const burst = Array.from({ length: 50 }, (_, i) => frame(1, 0x5, 2 * i + 1,
    Buffer.from([...GET, ...(i === 0 ? [0x40, ...hpackString('x-big'), ...hpackString('a'.repeat(4_000))] : []), ...refs])))
  // The preface and an empty SETTINGS, never an ACK of the server's.
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), ...burst]))
  t.ok(await until(() => closed), 'the connection is cut')
  t.ok(goaways(Buffer.concat(received)).includes(constants.NGHTTP2_ENHANCE_YOUR_CALM), 'GOAWAY ENHANCE_YOUR_CALM')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="header_list_size"}'), 1)
  t.ok(gw.logs.some(l => l.level === 40 && l.reason === 'header_list_size'), 'logged as a warning')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.ok(gw.logs.filter(l => l.error === 'headers_too_large').length <= 1, 'one request at most refused (431), not the burst\'s 50')
})

t.test('before SETTINGS are acknowledged, frames nghttp2 ignores do not pay for header lists built of references: cut within 1 MiB of them', async t => {
  const { gw, socket } = await gateway(t)
  const s = await socket()
  let closed = false
  s.once('close', () => { closed = true })
  // Each list 400 KB (x-big, 4,000 bytes indexed on stream 1, referenced 100 times), after 112 KB of
  // frames of an unknown type (ignored, no limit): 3.6 times the bytes read, under the ratio.
  const refs = new Array<number>(100).fill(0x80 | 62)
  const filler = Array.from({ length: 7 }, () => frame(0xfa, 0, 0, Buffer.alloc(16_384)))
  const lists = Array.from({ length: 8 }, (_, i) => [...filler, frame(1, 0x5, 2 * i + 1,
    Buffer.from([...GET, ...(i === 0 ? [0x40, ...hpackString('x-big'), ...hpackString('a'.repeat(4_000))] : []), ...refs]))]).flat()
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), ...lists]))
  t.ok(await until(() => closed), 'the connection is cut')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="header_list_size"}'), 1)
  t.ok(gw.logs.filter(l => l.error === 'headers_too_large').length <= 3, 'three lists at most decoded and refused (431), not the eight sent')
})

t.test('before SETTINGS are acknowledged, a header list within the size is served, and the connection with it', async t => {
  const { gw, socket } = await gateway(t)
  const s = await socket()
  let closed = false
  s.once('close', () => { closed = true })
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, Buffer.from([...GET, 0x40, ...hpackString('x-small'), ...hpackString('a'.repeat(4_000))])),
    frame(1, 0x5, 3, Buffer.from(GET))]))
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request' && l.status === 200).length === 2), 'both answered')
  t.notOk(closed, 'the connection stays')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="header_list_size"}'), 0)
})

t.test('before SETTINGS are acknowledged, a header list over maxHeaderListSize sent as it is gets its 431 on its own stream: the others are served, the connection stays', async t => {
  const { gw, socket } = await gateway(t)
  const s = await socket()
  let closed = false
  s.once('close', () => { closed = true })
  // A browser's first flight with a 17 KB cookie on two of its requests: literals, over a HEADERS and a CONTINUATION frame each.
  const big = (id: number, path: string): Buffer[] => {
    const block = Buffer.from([...get(path), 0x00, ...hpackString('cookie'), ...hpackString('c=' + 'x'.repeat(17_000))])
    return [frame(1, 0x1, id, block.subarray(0, 16_384)), frame(9, 0x4, id, block.subarray(16_384))]
  }
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, Buffer.from(get('/a'))), ...big(3, '/b'), ...big(5, '/c'),
    frame(1, 0x5, 7, Buffer.from(get('/d')))]))
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request' && l.status === 200).length === 2 && gw.logs.filter(l => l.error === 'headers_too_large').length === 2),
    'the ordinary requests served, the large ones refused')
  t.same(gw.logs.filter(l => l.msg === 'request').map(l => l.path).sort(), ['/a', '/d'])
  t.same(gw.logs.filter(l => l.error === 'headers_too_large').map(l => [l.path, l.status]).sort(), [['/b', 431], ['/c', 431]])
  await new Promise(resolve => setTimeout(resolve, 100))
  t.notOk(closed, 'the connection stays')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="header_list_size"}'), 0)
})

t.test('the streams of a connection cut for abuse are logged as cut by the gateway (400 http2_cut), not as the client\'s leaving (499)', async t => {
  const { gw, socket, slow } = await gateway(t)
  const s = await socket()
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, Buffer.from(get('/slow')))]))
  t.ok(await until(() => slow()), 'a request in flight')
  // x-big, 4,000 bytes indexed once and referenced 100 times: 400 KB from 4.2 KB.
  s.write(frame(1, 0x5, 3, Buffer.from([...GET, 0x40, ...hpackString('x-big'), ...hpackString('a'.repeat(4_000)), ...new Array<number>(100).fill(0x80 | 62)])))
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/slow' }), { status: 400, error: 'http2_cut', protocol: 'HTTP/2' })
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http2_connections_cut_total{reason="header_list_size"}'), 1)
})

/** The error codes of the GOAWAY frames in `bytes` (server frames, from its SETTINGS on). */
function goaways (bytes: Buffer): number[] {
  const codes: number[] = []
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) if (bytes[at + 3] === 7) codes.push(bytes.readUInt32BE(at + 13))
  return codes
}
