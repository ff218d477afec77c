import t from 'tap'
import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import { available, decodable, encoderFactory, requestDecoding } from './codings.ts'

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
