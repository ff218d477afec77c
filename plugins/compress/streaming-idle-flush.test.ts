import t from 'tap'
import { finished } from 'node:stream/promises'
import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { until } from '../../test/helpers/wait.ts'
import { HOLD_MS } from './idle-flush.ts'

const z = zlib as unknown as Record<string, (() => Transform) | undefined>
const DECODERS: Record<string, (() => Transform) | undefined> = {
  br: zlib.createBrotliDecompress, gzip: zlib.createGunzip, deflate: zlib.createInflate, zstd: z.createZstdDecompress
}
const CODINGS = Object.keys(DECODERS).filter(c => DECODERS[c] !== undefined)
const FIRST = '{"line":1}\n'
const SECOND = '{"line":2}\n'
const BULK = JSON.stringify(Array.from({ length: 6000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b', String(i % 13)] })))

// The idle-flush timers, told apart by their period: each must be cleared once nothing needs it.
const idleTimers = new Set<unknown>()
let armed = 0
const { setInterval: realSetInterval, clearInterval: realClearInterval } = globalThis
globalThis.setInterval = ((fn: () => void, ms?: number) => {
  const timer = realSetInterval(fn, ms)
  if (ms === HOLD_MS) { idleTimers.add(timer); armed++ }
  return timer
}) as typeof setInterval
globalThis.clearInterval = ((timer: NodeJS.Timeout | undefined) => { idleTimers.delete(timer); realClearInterval(timer) }) as typeof clearInterval
t.teardown(() => { globalThis.setInterval = realSetInterval; globalThis.clearInterval = realClearInterval })

/** Let the /lines upstream send more, and end with its second line (or, its client gone, try to). */
let sendMore = (_text: string): void => {}
let sendSecond = (): void => {}
/** The /trickle upstream: whether it has ended, and how to end it. */
const trickle = { ended: false, lines: 0, end: () => {} }
const TRICKLE_MAX = 500
const line = (i: number): string => `{"line":${i}}\n`

const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url ?? '/', 'http://x')
  if (url.pathname === '/bulk') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BULK.length) })
    res.end(BULK)
    return
  }
  if (url.pathname === '/trickle') {
    // A line every 10 ms, never pausing long, until the test ends it (or TRICKLE_MAX lines: 5 s or more).
    res.writeHead(200, { 'content-type': url.searchParams.get('type') ?? 'text/plain' })
    Object.assign(trickle, { ended: false, lines: 0 })
    const timer = setInterval(() => { if (trickle.lines < TRICKLE_MAX) res.write(line(++trickle.lines)); else trickle.end() }, 10)
    trickle.end = () => { clearInterval(timer); trickle.ended = true; res.end() }
    return
  }
  // Chunked, a line, then nothing until the test says so: a long poll, a log tail.
  res.writeHead(200, { 'content-type': url.searchParams.get('type') ?? 'text/plain' })
  sendMore = text => { res.write(text) }
  sendSecond = () => { if (!res.destroyed) res.end(SECOND) }
  res.write(FIRST)
})
t.teardown(() => up.close())

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: { compress: {} } }
`)
t.teardown(() => gw.close())

/** Requests `path`, decoding the body as it comes into `got.text`; `done` settles at its end (or abort). */
function fetchDecoded (path: string, coding: string) {
  const got = { text: '', coding: undefined as unknown, abort: () => {} }
  const done = request(`${gw.url}${path}`, { headers: { 'accept-encoding': coding } }).then(async res => {
    got.coding = res.headers['content-encoding']
    const decoder = (DECODERS[coding] as () => Transform)()
    decoder.on('data', (c: Buffer) => { got.text += c.toString() })
    got.abort = () => { res.body.destroy(); decoder.destroy() }
    res.body.pipe(decoder)
    await finished(decoder)
  })
  return { got, done }
}

t.test('a streamed body that pauses reaches the client up to the pause, head included, in every coding', async t => {
  for (const type of ['text/plain', 'application/json']) {
    for (const coding of CODINGS) {
      const { got, done } = fetchDecoded(`/lines?type=${type}`, coding)
      // The upstream waits for the client to have the first line: held by the encoder, it would wait forever.
      t.ok(await until(() => got.text === FIRST), `${type} in ${coding}: the first line arrives while the upstream pauses`)
      t.equal(got.coding, coding, 'with its head')
      sendSecond()
      await done
      t.equal(got.text, FIRST + SECOND, `${type} in ${coding}: the whole body`)
      t.ok(await until(() => idleTimers.size === 0), 'no idle-flush timer left once the response ended')
    }
  }
})

t.test('a steady trickle reaches the client as it comes, not when the upstream ends, in every coding', async t => {
  for (const type of ['text/plain', 'application/json']) {
    for (const coding of CODINGS) {
      const { got, done } = fetchDecoded(`/trickle?type=${type}`, coding)
      t.ok(await until(() => got.text !== '', 15_000), `${type} in ${coding}: decoded bytes arrived`)
      t.notOk(trickle.ended, 'before the upstream ended the stream')
      t.equal(got.coding, coding, 'with its head')
      trickle.end()
      await done
      t.equal(got.text, Array.from({ length: trickle.lines }, (_, i) => line(i + 1)).join(''), 'the whole body')
    }
  }
  t.ok(await until(() => idleTimers.size === 0), 'no idle-flush timer left once the responses ended')
})

t.test('a body sent in one go is packed whole, not flushed along the way', async t => {
  const gzip = await request(`${gw.url}/bulk`, { headers: { 'accept-encoding': 'gzip' } })
  const gzipped = Buffer.from(await gzip.body.arrayBuffer())
  t.same(gzipped, zlib.gzipSync(BULK, { level: 6 }), `gzip level 6 of the whole body (${gzipped.length} bytes for ${BULK.length})`)
  const br = await request(`${gw.url}/bulk`, { headers: { 'accept-encoding': 'br' } })
  const brotli = Buffer.from(await br.body.arrayBuffer())
  const whole = zlib.brotliCompressSync(BULK, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4, [zlib.constants.BROTLI_PARAM_LGWIN]: 18 } })
  t.equal(zlib.brotliDecompressSync(brotli).toString(), BULK)
  t.ok(brotli.length <= whole.length * 1.01, `br: ${brotli.length} bytes, ${whole.length} encoded in one piece`)
  t.ok(await until(() => idleTimers.size === 0), 'no idle-flush timer left')
})

t.test('a client leaving mid-stream, input not flushed yet, leaves no timer and nothing flushed into the closed stream', async t => {
  const errorsBefore = gw.logs.filter(l => (l.level as number) >= 50).length
  const { got, done } = fetchDecoded('/lines', 'br')
  t.ok(await until(() => got.text === FIRST), 'the first line arrives')
  const before = armed
  sendMore('{"line":"more"}\n')
  t.ok(await until(() => armed > before), 'more input arms the timer')
  got.abort()
  await done.catch(() => {})
  t.ok(await until(() => idleTimers.size === 0), 'the idle-flush timer is cleared when the client leaves')
  sendSecond()
  const after = fetchDecoded('/bulk', 'gzip')
  await after.done
  t.equal(after.got.text, BULK)
  t.same(gw.logs.filter(l => (l.level as number) >= 50).slice(errorsBefore), [], 'no error logged')
})
