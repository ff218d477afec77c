import t from 'tap'
import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { until } from '../../test/helpers/wait.ts'
import { available, decodable, decoder, encoderFactory, requestDecoding } from './codings.ts'
import type { Coding } from './schema.ts'

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

/** Random numbers below n and random bytes, from `seed` (mulberry32): the same inputs every run. */
function seeded (seed: number): { random: (n: number) => number, bytes: (n: number) => Buffer } {
  const random = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), seed | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return (((x ^ (x >>> 14)) >>> 0) % n)
  }
  return { random, bytes: n => Buffer.from(Array.from({ length: n }, () => random(256))) }
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
  const first = (await encode(encoderFactory('br', 4)(false), TEXT))[0] as number
  t.equal(first & 1, 1, 'brotli: a window above 64 KiB')
  t.equal(17 + ((first >> 1) & 7), 18, 'brotli: an 18-bit window')
  const [q4, q11] = [await encode(encoderFactory('br', 4)(false), TEXT), await encode(encoderFactory('br', 11)(false), TEXT)]
  t.ok(q11.length < q4.length * 0.9, `brotli quality 11 (${q11.length} bytes) packs tighter than 4 (${q4.length})`)
  t.equal(zlib.brotliDecompressSync(q4).toString(), TEXT)
})

t.test('a flushed stream\'s encoder holds less: zlib a 4 KiB window and memLevel 4, brotli a 64 KiB window and quality 3 at most', async t => {
  // An event stream may stay open for hours, holding its encoder: ~270 KB in gzip, ~1 MB in br 4 as they were.
  const k = zlib.constants
  const zlibFlush = { flush: k.Z_SYNC_FLUSH, windowBits: 12, memLevel: 4 }
  const brotli = (quality: number) => zlib.createBrotliCompress({ flush: k.BROTLI_OPERATION_FLUSH, params: { [k.BROTLI_PARAM_QUALITY]: quality, [k.BROTLI_PARAM_LGWIN]: 16 } })
  const cases: Array<[Coding, number, Transform]> = [
    ['gzip', 6, zlib.createGzip({ level: 6, ...zlibFlush })],
    ['deflate', 9, zlib.createDeflate({ level: 9, ...zlibFlush })],
    ['br', 4, brotli(3)],
    ['br', 11, brotli(3)],
    ['br', 1, brotli(1)]
  ]
  // The same bytes as an encoder made with those options (each setting changes them on this text).
  for (const [coding, level, expected] of cases) t.same(await afterWrite(encoderFactory(coding, level)(true), TEXT), await afterWrite(expected, TEXT), `${coding} ${level}`)
  // RFC 1950 2.2: CINFO, the top four bits of the first byte: the window's log less 8.
  t.equal((await afterWrite(encoderFactory('deflate', 6)(true), TEXT))[0] as number >> 4, 4, 'deflate: a 4 KiB window, said')
  // RFC 7932 9.1: WBITS 0 in the first bit: a 16-bit window.
  t.equal(((await afterWrite(encoderFactory('br', 4)(true), TEXT))[0] as number) & 1, 0, 'brotli: a 64 KiB window, said')
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

t.test('zstd holds under 30 MB a stream at any level: its match tables bounded (levels 19 and 22 took 80 and 640 MB)', { skip: !available('zstd') && 'no zstd in this Node' }, async t => {
  for (const level of [3, 12, 19, 22]) {
    const before = process.memoryUsage().rss
    // Its tables are sized and zeroed at the first write, whatever the body's size.
    const encoders = Array.from({ length: 4 }, () => encoderFactory('zstd', level)(false))
    for (const e of encoders) {
      e.resume()
      await new Promise(resolve => e.write(TEXT, resolve))
    }
    const each = (process.memoryUsage().rss - before) / encoders.length
    t.ok(each < 30 * 2 ** 20, `level ${level}: ${(each / 2 ** 20).toFixed(1)} MB a stream`)
    for (const e of encoders) e.destroy()
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

for (const [coding, body, all] of [
  ['deflate', () => zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024)), 'all of it'],
  ['gzip', () => Buffer.concat([zlib.gzipSync(Buffer.alloc(32 * 1024 * 1024)), zlib.gzipSync(Buffer.alloc(32 * 1024 * 1024))]), 'all of both members']
] as const) {
  t.test(`${coding}'s decoder passes its output on at the reader's pace: a bomb not read stays in zlib`, async t => {
    const d = decoder(coding)
    d.end(body())
    t.ok(await until(() => d.readableLength >= d.readableHighWaterMark), 'output waits for a reader')
    // Nothing tells that more did not come: a while, for zlib to put out more if it were let.
    await delay(100)
    t.ok(d.readableLength < d.readableHighWaterMark + 16 * 1024, `${d.readableLength} bytes waiting, no more`)
    let n = 0
    d.on('data', (c: Buffer) => { n += c.length })
    await new Promise(resolve => d.on('end', resolve))
    t.equal(n, 64 * 1024 * 1024, `${all}, once read`)
  })
}

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
  const { random, bytes } = seeded(0x5eed)
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

/** A gzip member of `text` with the header fields given (RFC 1952 2.3), which zlib.gzipSync never writes. */
function member (text: string, fields: { extra?: Buffer, name?: string, comment?: string, hcrc?: boolean, badHcrc?: boolean } = {}): Buffer {
  const flags = (fields.hcrc === true || fields.badHcrc === true ? 2 : 0) | (fields.extra === undefined ? 0 : 4) | (fields.name === undefined ? 0 : 8) | (fields.comment === undefined ? 0 : 16)
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3])]
  if (fields.extra !== undefined) parts.push(Buffer.from([fields.extra.length & 0xff, fields.extra.length >> 8]), fields.extra)
  if (fields.name !== undefined) parts.push(Buffer.from(`${fields.name}\0`, 'latin1'))
  if (fields.comment !== undefined) parts.push(Buffer.from(`${fields.comment}\0`, 'latin1'))
  if ((flags & 2) !== 0) {
    const crc = zlib.crc32(Buffer.concat(parts)) & 0xffff
    parts.push(Buffer.from([(crc ^ (fields.badHcrc === true ? 1 : 0)) & 0xff, crc >> 8]))
  }
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(zlib.crc32(text), 0)
  trailer.writeUInt32LE(Buffer.byteLength(text) % 2 ** 32, 4)
  return Buffer.concat([...parts, zlib.deflateRawSync(text), trailer])
}

/** The decoded text, or the gzip decoder's error, for `body` written in chunks of `size`. */
async function gunzipped (body: Buffer, size: number): Promise<string> {
  const text = await outcome(decoder('gzip', err => new Error(`blamed: ${err.message}`)), chunks(body, size))
  return text.replace(/^error: /, '')
}

t.test('gzip: members one after another; header fields skipped as zlib skips them; broken an error as zlib\'s', async t => {
  const gz = zlib.gzipSync(TEXT)
  t.same(member(TEXT), Buffer.concat([gz.subarray(0, 9), Buffer.from([3]), gz.subarray(10)]), 'the test\'s members are gzipSync\'s')
  const fielded = member(TEXT, { extra: Buffer.from('AB\x04\x00data'), name: 'file.json', comment: 'a comment', hcrc: true })
  t.equal(zlib.gunzipSync(fielded).toString(), TEXT, 'zlib takes the fielded member')
  for (const size of [1, 2, 3, 7, 1e9]) {
    t.equal(await gunzipped(gz, size), TEXT, `one member, in chunks of ${size}`)
    t.equal(await gunzipped(fielded, size), TEXT, `extra field, name, comment and header CRC, in chunks of ${size}`)
    t.equal(await gunzipped(Buffer.concat([gz, member('second', { name: 'x' }), zlib.gzipSync('')]), size), `${TEXT}second`, `three members, in chunks of ${size}`)
    t.equal(await gunzipped(gz.subarray(0, 100), size), 'blamed: unexpected end of file', `truncated in its data, in chunks of ${size}`)
    t.equal(await gunzipped(gz.subarray(0, -3), size), 'blamed: unexpected end of file', `its trailer cut, in chunks of ${size}`)
    t.equal(await gunzipped(fielded.subarray(0, 20), size), 'blamed: unexpected end of file', `its header cut, in chunks of ${size}`)
    t.equal(await gunzipped(Buffer.concat([gz, zlib.gzipSync('x').subarray(0, 5)]), size), 'blamed: unexpected end of file', `a second member cut, in chunks of ${size}`)
  }
  const flipped = (b: Buffer, at: number): Buffer => {
    const c = Buffer.from(b)
    const i = at < 0 ? c.length + at : at
    c[i] = (c[i] as number) ^ 1
    return c
  }
  t.equal(await gunzipped(flipped(gz, -8), 1e9), 'blamed: incorrect data check')
  t.equal(await gunzipped(flipped(gz, -4), 1e9), 'blamed: incorrect length check')
  t.equal(await gunzipped(member(TEXT, { name: 'x', badHcrc: true }), 1e9), 'blamed: header crc mismatch')
  t.equal(await gunzipped(flipped(gz, 2), 1e9), 'blamed: unknown compression method')
  t.equal(await gunzipped(Buffer.concat([gz.subarray(0, 3), Buffer.from([0x20]), gz.subarray(4)]), 1e9), 'blamed: unknown header flags set')
  t.equal(await gunzipped(Buffer.from('not gzip at all'), 1e9), 'blamed: incorrect header check')
  t.equal(await gunzipped(Buffer.from([0x1f]), 1), 'blamed: unexpected end of file', 'a byte alone')
  t.equal(await gunzipped(Buffer.alloc(0), 1), '', 'an empty body')
  t.equal(await gunzipped(member('named', { name: 'n'.repeat(1 << 20) }), 4096), 'named', 'a name of 1 MiB')
})

t.test('gzip: bytes after the last member are ignored, as browsers ignore them; the decoder ends', { timeout: 10_000 }, async t => {
  const gz = zlib.gzipSync(TEXT)
  for (const size of [1, 2, 7, 1e9]) {
    for (const [what, after] of [['a CRLF', '\r\n'], ['zero bytes', '\0\0\0'], ['zeros then more', '\0\0x'], ['a lone 1f', '\x1f'], ['1f then not 8b', '\x1f\x00gzip'], ['text', 'garbage after']] as const) {
      t.equal(await gunzipped(Buffer.concat([gz, Buffer.from(after, 'latin1')]), size), TEXT, `${what}, in chunks of ${size}`)
    }
    t.equal(await gunzipped(Buffer.concat([gz, zlib.gzipSync('second'), Buffer.from('\r\n')]), size), `${TEXT}second`, `two members and a CRLF, in chunks of ${size}`)
    t.equal(await gunzipped(Buffer.concat([gz, Buffer.from('\r\n'), zlib.gzipSync('second')]), size), TEXT, `a member after a CRLF is past the end, in chunks of ${size}`)
  }
  t.equal(await gunzipped(Buffer.concat([zlib.gzipSync(''), Buffer.from('\r\n')]), 1e9), '', 'an empty member and a CRLF')
})

t.test('gzip: any input ends the decoder or fails it, as createGunzip reads it up to the bytes after the last member', { timeout: 30_000 }, async t => {
  // Seeded, so a failure names an input that fails again.
  const { random, bytes } = seeded(0x9e1f)
  const samples = [
    zlib.gzipSync(TEXT.slice(0, 300)), zlib.gzipSync(''), zlib.gzipSync(bytes(64)),
    member('fields', { extra: Buffer.from('AB\x02\x00hi'), name: 'f', comment: 'c', hcrc: true }), member('', { name: '' })
  ]
  const sample = (): Buffer => samples[random(samples.length)] as Buffer
  /** A random body: random bytes, or one to three members, cut, with bytes flipped, with bytes or a member appended. */
  const input = (): Buffer => {
    if (random(5) === 0) return bytes(random(48))
    let b = Buffer.concat(Array.from({ length: 1 + random(3) }, sample))
    if (random(3) === 0) b = b.subarray(0, random(b.length + 1))
    for (let flips = random(3); flips > 0 && b.length > 0; flips--) b[random(b.length)] = random(256)
    const tail = random(4)
    return tail === 0 ? Buffer.concat([b, bytes(1 + random(8))]) : tail === 1 ? Buffer.concat([b, Buffer.from([0x1f, 0x8b].slice(0, 1 + random(2))), bytes(random(4))]) : b
  }
  /** createGunzip's outcome for `b`. */
  const gunzip = async (b: Buffer): Promise<string> => await outcome(zlib.createGunzip(), [b])
  const inputs = Array.from({ length: 4000 }, input)
  let trailing = 0
  for (let i = 0; i < inputs.length; i += 200) {
    // In batches: each must end or fail, else the test's timeout fails it.
    await Promise.all(inputs.slice(i, i + 200).map(async body => {
      const got = await outcome(decoder('gzip'), chunks(body, 1 + random(body.length + 1)))
      const theirs = await gunzip(body)
      if (body.length === 0) { if (got !== '') t.fail(`an empty body: ${got}`); return }
      if (got === theirs) return
      if (got.startsWith('error: ')) { t.fail(`${body.toString('hex')}: ${got}, createGunzip ${theirs}`); return }
      // Taken where createGunzip refused: it read on past the last member. Ours must be what it makes
      // of the body up to a point past which the bytes begin no member.
      let k = body.length
      for (; k > 0; k--) {
        if (body[k] === 0x1f && body[k + 1] === 0x8b) continue
        if (await gunzip(body.subarray(0, k)) === got) break
      }
      if (k === 0) t.fail(`${body.toString('hex')}: ${got}, createGunzip ${theirs}, no member sequence of it gives that`)
      else trailing++
    }))
  }
  t.ok(trailing > 200, `${trailing} of ${inputs.length} with bytes after the last member that createGunzip refused`)
  t.pass(`all ${inputs.length} ended or failed, as createGunzip or with its members ended earlier`)
})
