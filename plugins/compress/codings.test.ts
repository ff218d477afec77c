import t from 'tap'
import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { until } from '../../test/helpers/wait.ts'
import { available, decodable, decoder, encoderFactory, requestDecoding } from './codings.ts'

const TEXT = Array.from({ length: 2000 }, (_, i) => `line ${i} ${'abc'.repeat(i % 7)}\n`).join('')

/** What the encoder has put out once it has taken `text` (flushed or not), before it ends. */
async function afterWrite (encoder: Transform, text: string): Promise<Buffer> {
  const out: Buffer[] = []
  encoder.on('data', (c: Buffer) => out.push(c))
  await new Promise<void>((resolve, reject) => encoder.write(text, err => { if (err == null) resolve(); else reject(err) }))
  await new Promise(resolve => setImmediate(resolve))
  encoder.destroy()
  return Buffer.concat(out)
}

/** The whole encoded body. */
async function encode (encoder: Transform, text: string): Promise<Buffer> {
  const out: Buffer[] = []
  encoder.on('data', (c: Buffer) => out.push(c))
  encoder.end(text)
  await new Promise(resolve => encoder.on('end', resolve))
  return Buffer.concat(out)
}

t.test('decodable: the codings a Content-Encoding value names', async t => {
  t.equal(decodable('gzip'), 'gzip')
  t.equal(decodable('x-gzip'), 'gzip', 'x-gzip is gzip (RFC 9110 8.4.1.3)')
  t.equal(decodable('X-GZIP'), 'gzip')
  t.equal(decodable(' Br '), 'br', 'case and surrounding spaces do not matter')
  t.equal(decodable('deflate'), 'deflate')
  for (const v of ['identity', 'compress', 'x-compress', 'constructor', '__proto__', 'gzip, br', '']) t.equal(decodable(v), undefined, JSON.stringify(v))
})

t.test('requestDecoding: the codings to undo on a request body, outermost first', async t => {
  t.same(requestDecoding('gzip'), ['gzip'])
  t.same(requestDecoding('gzip, br'), ['br', 'gzip'], 'the last applied is undone first')
  t.same(requestDecoding('X-GZIP,deflate'), ['deflate', 'gzip'])
  t.same(requestDecoding('identity, gzip, identity'), ['gzip'], 'identity is no coding')
  t.same(requestDecoding('gzip,, '), ['gzip'], 'nor is an empty list element')
  for (const v of ['', 'identity', 'identity, identity', 'compress', 'compress, constructor', ' , ']) t.equal(requestDecoding(v), 'pass', JSON.stringify(v))
  for (const v of ['compress, gzip', 'gzip, compress', 'gzip, __proto__']) t.equal(requestDecoding(v), 'unknown', v)
  t.equal(requestDecoding('gzip, gzip, gzip'), 'deep')
})

t.test('available: gzip, deflate and br always; zstd where the Node running has it', async t => {
  t.ok(available('gzip') && available('deflate') && available('br'))
  t.equal(available('zstd'), typeof (zlib as unknown as Record<string, unknown>).createZstdCompress === 'function')
})

// The settings are read back from the stream headers, where each format records them.
t.test('encoders use the configured level, brotli a 256 KiB window', async t => {
  // RFC 1952 2.3.1: XFL 4 = fastest (level 1), 2 = slowest (level 9), 0 otherwise.
  t.equal((await encode(encoderFactory('gzip', 1)(false), TEXT))[8], 4, 'gzip level 1')
  t.equal((await encode(encoderFactory('gzip', 9)(true), TEXT))[8], 2, 'gzip level 9, flushed')
  // RFC 1950 2.2: FLEVEL, the top two bits of the second byte: 0 fastest (1), 2 default (6), 3 slowest (9).
  t.equal((await encode(encoderFactory('deflate', 1)(false), TEXT))[1] as number >> 6, 0, 'deflate level 1')
  t.equal((await encode(encoderFactory('deflate', 6)(false), TEXT))[1] as number >> 6, 2, 'deflate level 6')
  t.equal((await encode(encoderFactory('deflate', 9)(true), TEXT))[1] as number >> 6, 3, 'deflate level 9, flushed')
  // RFC 7932 9.1: WBITS in the first bits: 1, then 3 bits n (n > 0: 17 + n).
  for (const flush of [false, true]) {
    const first = (await encode(encoderFactory('br', 4)(flush), TEXT))[0] as number
    t.equal(first & 1, 1, 'brotli: a window above 64 KiB')
    t.equal(17 + ((first >> 1) & 7), 18, `brotli: an 18-bit window (flush: ${flush})`)
  }
  const [q4, q11] = [await encode(encoderFactory('br', 4)(false), TEXT), await encode(encoderFactory('br', 11)(false), TEXT)]
  t.ok(q11.length < q4.length * 0.9, `brotli quality 11 (${q11.length} bytes) packs tighter than 4 (${q4.length})`)
  t.equal(zlib.brotliDecompressSync(q4).toString(), TEXT)
})

t.test('flushing encoders put out all they were given after each write, decodable as it stands', async t => {
  // zlib's Z_SYNC_FLUSH ends on an empty stored block (00 00 ff ff), so the bytes so far decode whole.
  for (const coding of ['gzip', 'deflate'] as const) {
    const out = await afterWrite(encoderFactory(coding, 6)(true), TEXT.slice(0, 500))
    t.same([...out.subarray(-4)], [0, 0, 0xff, 0xff], `${coding}: a sync flush`)
    const partial = coding === 'gzip' ? zlib.gunzipSync(out, { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : zlib.inflateSync(out, { finishFlush: zlib.constants.Z_SYNC_FLUSH })
    t.equal(partial.toString(), TEXT.slice(0, 500), `${coding}: all of the write decodes`)
  }
  const br = await afterWrite(encoderFactory('br', 4)(true), TEXT.slice(0, 500))
  t.equal(zlib.brotliDecompressSync(br, { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH }).toString(), TEXT.slice(0, 500), 'br: all of the write decodes')
})

t.test('zstd at levels 20-22 keeps to the 8 MiB window HTTP allows (RFC 9659 3), as a browser decodes it', { skip: !available('zstd') && 'no zstd in this Node' }, async t => {
  const k = zlib.constants as unknown as Record<string, number>
  const decompress = (zlib as unknown as Record<string, (b: Buffer, o: object) => Buffer>).zstdDecompressSync as (b: Buffer, o: object) => Buffer
  for (const level of [19, 20, 22]) {
    for (const flush of [false, true]) {
      const out = await encode(encoderFactory('zstd', level)(flush), TEXT)
      // RFC 8878 3.1.1.1: a frame of unknown size has a Window_Descriptor after the header descriptor, the window 2^(10 + exponent).
      t.equal((out[4] as number) & 0x20, 0, 'a stream of unknown size')
      t.ok(10 + ((out[5] as number) >> 3) <= 23, `level ${level}: a window of 2^${10 + ((out[5] as number) >> 3)} (flush: ${flush})`)
      t.equal(decompress(out, { params: { [k.ZSTD_d_windowLogMax as number]: 23 } }).toString(), TEXT, 'a decoder taking at most 8 MiB reads it')
    }
  }
})

/** What `d` puts out for `parts` written one by one: the text, or `error: message`. */
async function outcome (d: Transform, parts: Buffer[]): Promise<string> {
  const out: Buffer[] = []
  d.on('data', (c: Buffer) => out.push(c))
  const ended = new Promise<string>((resolve, reject) => { d.on('end', () => resolve(Buffer.concat(out).toString('latin1'))); d.on('error', reject) })
  for (const part of parts) d.write(part)
  d.end()
  return await ended.catch((err: Error) => `error: ${err.message}`)
}

/** `body` in chunks of `size`. */
function chunks (body: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = []
  for (let i = 0; i < body.length; i += size) parts.push(body.subarray(i, i + size))
  return parts
}

/** The decoded text, or the decoder's error, for `body` written in chunks of `size`. */
async function decoded (body: Buffer, size: number): Promise<string> {
  const text = await outcome(decoder('deflate', err => new Error(`blamed: ${err.message}`)), chunks(body, size))
  return text.replace(/^error: /, '')
}

t.test('deflate decodes the zlib format and raw deflate, as browsers do; empty is empty, broken an error', async t => {
  const [zlibbed, raw] = [zlib.deflateSync(TEXT), zlib.deflateRawSync(TEXT)]
  for (const size of [1, 2, 3, 1e9]) {
    t.equal(await decoded(zlibbed, size), TEXT, `zlib format, in chunks of ${size}`)
    t.equal(await decoded(raw, size), TEXT, `raw deflate, in chunks of ${size}`)
    t.equal(await decoded(raw.subarray(0, 100), size), 'blamed: unexpected end of file', 'raw deflate, truncated')
    t.equal(await decoded(zlibbed.subarray(0, -1), size), 'blamed: unexpected end of file', 'zlib format, its checksum cut')
  }
  t.equal(await decoded(Buffer.alloc(0), 1), '', 'an empty body')
  t.equal(await decoded(Buffer.from([0x78]), 1), 'blamed: unexpected end of file', 'a byte alone')
  t.match(await decoded(Buffer.from('not deflate at all'), 1e9), /^blamed: /)
})

t.test('deflate\'s decoder passes its output on at the reader\'s pace: a bomb not read stays in zlib', async t => {
  const d = decoder('deflate')
  d.end(zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024)))
  t.ok(await until(() => d.readableLength >= d.readableHighWaterMark), 'output waits for a reader')
  // Nothing tells that more did not come: a while, for zlib to put out more if it were let.
  await delay(100)
  t.ok(d.readableLength < d.readableHighWaterMark + 16 * 1024, `${d.readableLength} bytes waiting, no more`)
  let n = 0
  d.on('data', (c: Buffer) => { n += c.length })
  await new Promise(resolve => d.on('end', resolve))
  t.equal(n, 64 * 1024 * 1024, 'all of it, once read')
})

t.test('deflate: bytes after the deflate stream are ignored, as createInflate ignores them; the decoder ends', { timeout: 10_000 }, async t => {
  const crlf = Buffer.from('\r\n')
  const [zlibbed, raw] = [zlib.deflateSync(TEXT), zlib.deflateRawSync(TEXT)]
  // Each once hung: zlib ended its stream during a write, and flush waited for an end already past.
  for (const size of [1, 2, 7, 1e9]) {
    t.equal(await decoded(Buffer.concat([zlibbed, crlf]), size), TEXT, `zlib format and a CRLF, in chunks of ${size}`)
    t.equal(await decoded(Buffer.concat([raw, crlf]), size), TEXT, `raw deflate and a CRLF, in chunks of ${size}`)
    t.equal(await decoded(Buffer.concat([zlibbed, zlib.deflateSync('second')]), size), TEXT, `two zlib streams: the second ignored, in chunks of ${size}`)
    t.equal(await decoded(Buffer.concat([raw, zlib.deflateRawSync('second')]), size), TEXT, `two raw streams: the second ignored, in chunks of ${size}`)
    t.equal(await decoded(Buffer.concat([zlibbed, crlf]).subarray(0, 50), size), 'blamed: unexpected end of file', `truncated, in chunks of ${size}`)
  }
  t.equal(await decoded(Buffer.concat([zlib.deflateSync(''), crlf]), 1e9), '', 'an empty zlib stream and a CRLF')
  t.equal(await decoded(Buffer.alloc(0), 1), '', 'an empty body')
  t.equal(await decoded(Buffer.from([0x03, 0x00, 0x0d, 0x0a]), 1), '', 'an empty raw stream (final fixed block, end code) and a CRLF')
})

t.test('deflate: any input ends the decoder or fails it, the zlib format exactly as createInflate reads it', { timeout: 20_000 }, async t => {
  // Seeded, so a failure names an input that fails again.
  let seed = 0x5eed
  const random = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), seed | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return (((x ^ (x >>> 14)) >>> 0) % n)
  }
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => random(256)))
  const samples = [zlib.deflateSync(TEXT.slice(0, 300)), zlib.deflateRawSync(TEXT.slice(0, 300)), zlib.deflateSync(''), zlib.deflateRawSync(''), zlib.deflateRawSync(bytes(64))]
  /** A random body: random bytes, or a valid stream cut, with bytes flipped or appended. */
  const input = (): Buffer => {
    if (random(4) === 0) return bytes(random(48))
    let b = Buffer.from(samples[random(samples.length)] as Buffer)
    if (random(3) === 0) b = b.subarray(0, random(b.length + 1))
    for (let flips = random(3); flips > 0 && b.length > 0; flips--) b[random(b.length)] = random(256)
    return random(2) === 0 ? Buffer.concat([b, bytes(random(8))]) : b
  }
  const inputs = Array.from({ length: 4000 }, input)
  let zlibFormat = 0
  for (let i = 0; i < inputs.length; i += 200) {
    // In batches: each must end or fail, else the test's timeout fails it.
    await Promise.all(inputs.slice(i, i + 200).map(async body => {
      const parts = chunks(body, 1 + random(body.length + 1))
      const got = await outcome(decoder('deflate'), parts)
      if (body.length >= 2 && zlib.deflateSync('').subarray(0, 2).equals(body.subarray(0, 2))) {
        zlibFormat++
        const inflated = await outcome(zlib.createInflate(), parts)
        if (got !== inflated) t.fail(`${body.toString('hex')}: ${got}, not createInflate's ${inflated}`)
      }
    }))
  }
  t.ok(zlibFormat > 500, `${zlibFormat} of ${inputs.length} in the zlib format, compared with createInflate`)
  t.pass(`all ${inputs.length} ended or failed`)
})
