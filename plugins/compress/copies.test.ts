import t from 'tap'
import { connect, type Socket } from 'node:net'
import { getDefaultHighWaterMark } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { liveBufferBytes } from '../../test/helpers/memory.ts'
import { MB, settled } from '../../test/helpers/streams.ts'
import { Capture } from '../shared/body-streams.ts'
import { EncodedCopies } from './encoded-copies.ts'

const tick = () => new Promise(resolve => setImmediate(resolve))

t.test('Capture at the client\'s pace: writes wait for the reader within the limit too; a copy past it is said too large', async t => {
  // Sizes by the streams' default high-water mark (16 KiB on Node 20, 64 KiB from Node 22).
  const hwm = getDefaultHighWaterMark(false)
  const results: Array<[Buffer | undefined, boolean]> = []
  const paced = new Capture(3 * hwm, (body, tooLarge) => results.push([body, tooLarge]), { clientPace: true })
  const written: number[] = []
  for (const size of [hwm, hwm / 2]) paced.write(Buffer.alloc(size), () => written.push(size))
  await tick()
  t.same(written, [], 'nobody reads: the first write waits')
  paced.resume()
  await tick()
  t.same(written, [hwm, hwm / 2], 'once read')
  paced.end(Buffer.alloc(2 * hwm))
  await new Promise(resolve => paced.on('end', resolve))
  t.same(results, [[undefined, true]], 'past the limit: too large')
  const broken = new Capture(10, (body, tooLarge) => results.push([body, tooLarge]))
  broken.destroy()
  await new Promise(resolve => broken.on('close', resolve))
  t.same(results[1], [undefined, false], 'a broken stream: not too large')
})

t.test('EncodedCopies: one copy of a body per coding under way; one too large is not tried again', async t => {
  const copies = new EncodedCopies(1000, () => {})
  const body = Buffer.alloc(100)
  t.equal(copies.claim(body, 'identity'), 0, 'replied once: no copy')
  t.equal(copies.claim(body, 'identity'), 900, 'room for the copy beside its body')
  t.equal(copies.claim(body, 'identity'), 0, 'one copy at a time')
  copies.copied(body, 'identity', undefined, false)
  copies.set(body, 'br', Buffer.alloc(300))
  t.equal(copies.claim(body, 'identity'), 600, 'a copy that broke leaves room for another, beside the other copies')
  copies.copied(body, 'identity', undefined, true)
  t.equal(copies.claim(body, 'identity'), 0, 'too large: never again')
  t.equal(copies.claim(body, 'gzip'), 600, 'other codings still may')
  copies.copied(body, 'gzip', Buffer.alloc(50), false)
  t.equal(copies.get(body, 'gzip')?.length, 50)
  t.equal(copies.claim(Buffer.alloc(100), 'identity'), 0, 'another body (the same bytes) is another story')
})

t.test('EncodedCopies: copies under way in two codings hold their room apart; the kept ones stay', async t => {
  // Each claim worked out its room as if alone: 10,000 each beside a 10,000 B body in 20,000; once
  // both copies came, lru-cache refused the entry over its size and dropped the body's, both copies gone.
  const reported: number[] = []
  const copies = new EncodedCopies(20_000, bytes => reported.push(bytes))
  const body = Buffer.alloc(10_000)
  t.equal(copies.claim(body, 'identity'), 0, 'the first reply')
  const rooms = [['gzip', copies.claim(body, 'gzip')], ['br', copies.claim(body, 'br')]] as const
  t.same(rooms, [['gzip', 10_000], ['br', 0]], 'the room is gzip\'s until its copy comes')
  // As a reply does: copies of 6,000 B each where it was given room, br's first.
  for (const [coding, room] of rooms.toReversed()) if (room > 0) copies.copied(body, coding, room >= 6000 ? Buffer.alloc(6000) : undefined, room < 6000)
  t.equal(copies.get(body, 'gzip')?.length, 6000, 'gzip\'s kept')
  t.equal(reported.at(-1), 16_000)
  t.equal(copies.claim(body, 'br'), 4000, 'the room left beside gzip\'s copy')
  t.equal(copies.claim(body, 'deflate'), 0, 'held by br\'s')
  copies.copied(body, 'br', undefined, true)
  t.equal(copies.get(body, 'gzip')?.length, 6000, 'br too large: gzip\'s kept')
  t.equal(reported.at(-1), 16_000)
  t.equal(copies.claim(body, 'deflate'), 4000, 'br\'s room given back')
})

t.test('clients of a stored gzip body that take no coding and never read hold little memory: the decoded copy follows their pace', async t => {
  // 12 MiB of JSON decoded, stored gzipped (far less): its identity copy can never fit keepEncoded (8 MiB).
  const json = Buffer.from(JSON.stringify(Array.from({ length: 200_000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] }))).padEnd(12 * MB, ' '))
  const gz = gzipSync(json)
  const up = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'cache-control': 'max-age=600', 'content-length': gz.length }).end(gz)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /doc }
    upstream: u
    plugins: { cache: { maxObjectSize: 4MiB }, compress: {} }
`)
  t.teardown(() => gw.close())
  const get = async (accept: string) => {
    const res = await request(`${gw.url}/doc`, { headers: { 'accept-encoding': accept } })
    return { status: String(res.headers['cache-status']), length: (await res.body.arrayBuffer()).byteLength }
  }
  t.match(await get('gzip'), { status: /stored/, length: gz.length })
  t.match(await get('identity'), { status: /hit/, length: json.length }, 'the first hit decoded: copies are made from the second on')

  // The readers' last buffers gone first (undici lets go of a body's chunks a turn after it ends).
  await settled(() => process.memoryUsage().arrayBuffers)
  const base = liveBufferBytes()
  const sockets: Socket[] = []
  t.teardown(() => { for (const s of sockets) s.destroy() })
  for (let i = 0; i < 16; i++) {
    const s = connect(Number(new URL(gw.url).port), '127.0.0.1')
    s.on('error', () => {})
    // Never read: what the gateway sends stays in the socket buffers, then in its own.
    s.pause()
    s.write('GET /doc HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n')
    sockets.push(s)
  }
  await settled(() => process.memoryUsage().arrayBuffers)
  const held = liveBufferBytes() - base
  // One copy under way (what the socket buffers took), little for each other client: measured 6 MB on
  // Node 20, 20 MB on Node 24 (its streams buffer 64 KiB, not 16); about 4 MB each (61-64 MB) when copying ignored their pace.
  t.ok(held < 32 * MB, `16 clients that do not read hold ${(held / MB).toFixed(1)} MB`)

  for (let i = 0; i < 3; i++) t.match(await get('identity'), { status: /hit/, length: json.length }, 'a client that reads gets the whole decoded body')
})
