import zlib, { type BrotliOptions, type ZlibOptions } from 'node:zlib'
import { Transform } from 'node:stream'
import type { Coding } from './schema.ts'
import { flushHeld } from './idle-flush.ts'

type Factory = (options: ZlibOptions & BrotliOptions) => Transform
// zstd arrived in Node 22.15 / 23.8; typed loosely so the code builds against older @types/node.
const z = zlib as unknown as Record<string, Factory | undefined> & { constants: Record<string, number> }

const ENCODERS: Record<Coding, Factory | undefined> = {
  br: zlib.createBrotliCompress,
  zstd: z.createZstdCompress,
  gzip: zlib.createGzip,
  deflate: zlib.createDeflate
}
const DECODERS: Record<Coding, Factory | undefined> = {
  br: zlib.createBrotliDecompress,
  zstd: z.createZstdDecompress,
  gzip: zlib.createGunzip,
  deflate: zlib.createInflate // decoder() takes raw deflate too (deflateDecoder)
}

/** Whether the Node running can encode and decode `coding`. */
export function available (coding: Coding): boolean {
  return ENCODERS[coding] !== undefined && DECODERS[coding] !== undefined
}

/** The coding named by a Content-Encoding value we can decode (`x-gzip` is gzip), else undefined. */
export function decodable (value: string): Coding | undefined {
  const v = value.trim().toLowerCase()
  const c = v === 'x-gzip' ? 'gzip' : v
  // Own keys only: `constructor` or `__proto__` is no coding.
  return Object.hasOwn(DECODERS, c) && available(c as Coding) ? c as Coding : undefined
}

/** At most this many codings are undone on one request body (`gzip, gzip` is two). */
export const MAX_LAYERS = 2

/**
 * How to decode a request body sent with Content-Encoding `value`, a list of the codings applied in
 * order (RFC 9110 8.4; lines joined): the codings to undo, outermost first; `pass` to send it as it is
 * (none, `identity` entries only, or only codings the gateway does not know, like one such coding);
 * `unknown` (one it knows beside one it does not) or `deep` (more than MAX_LAYERS) to refuse it: passed
 * on, a bomb in it would reach the upstream uncounted by request-size.
 */
export function requestDecoding (value: string): Coding[] | 'pass' | 'unknown' | 'deep' {
  if (!value.includes(',')) {
    const coding = decodable(value)
    return coding === undefined ? 'pass' : [coding]
  }
  const codings: Coding[] = []
  let unknown = false
  for (const item of value.split(',')) {
    const v = item.trim()
    // Empty list elements are no codings (RFC 9110 5.6.1.2), nor is identity.
    if (v === '' || v.toLowerCase() === 'identity') continue
    const coding = decodable(v)
    if (coding === undefined) unknown = true
    else codings.unshift(coding)
  }
  if (codings.length === 0) return 'pass'
  if (unknown) return 'unknown'
  return codings.length > MAX_LAYERS ? 'deep' : codings
}

// RFC 9659 3: zstd in HTTP has at most an 8 MiB window (2^23), and browsers refuse a frame asking for
// more. Levels 20-22 ask for 32 to 128 MiB on a stream of unknown size; 19 and below for 8 MiB at most.
const ZSTD_WINDOW_LOG = 23
const ZSTD_WIDE_LEVEL = 20

function zstdParams (level: number): Record<number, number> {
  const k = z.constants
  const params = { [k.ZSTD_c_compressionLevel as number]: level }
  // Set only where the level's own is wider: a smaller one costs less memory per stream.
  if (level >= ZSTD_WIDE_LEVEL) params[k.ZSTD_c_windowLog as number] = ZSTD_WINDOW_LOG
  return params
}

/**
 * Makes encoders with options fixed at load. `flush`: each written chunk is flushed through, so a
 * server-sent event reaches the client when the upstream sends it, not when a block fills; else
 * what the encoder holds is flushed within 100 ms of its coming (flushHeld).
 */
export function encoderFactory (coding: Coding, level: number): (flush: boolean) => Transform {
  const create = ENCODERS[coding] as Factory
  const c = zlib.constants
  // Brotli's default 4 MiB window made each response cost ~3x the CPU under concurrency (memory
  // churn, bench/compress.ts); 256 KiB loses almost nothing on API-sized bodies.
  const params = coding === 'br'
    ? { params: { [c.BROTLI_PARAM_QUALITY]: level, [c.BROTLI_PARAM_LGWIN]: 18 } }
    : coding === 'zstd' ? { params: zstdParams(level) } : { level }
  const kind = coding === 'br' ? c.BROTLI_OPERATION_FLUSH : coding === 'zstd' ? z.constants.ZSTD_e_flush as number : c.Z_SYNC_FLUSH
  const streaming = { ...params, flush: kind }
  return flush => flush ? create(streaming) : flushHeld(create(params), kind)
}

/** RFC 1950 2.2: a zlib header: method 8 (deflate), a window of at most 32 KiB, the two bytes a multiple of 31. */
function zlibHeader (b: Buffer): boolean {
  if (b.length < 2) return false
  const h = b.readUInt16BE(0)
  return (h & 0x0f00) === 0x0800 && h >> 12 <= 7 && h % 31 === 0
}

/**
 * `deflate` read as browsers read it: the zlib format it names (RFC 9110 8.4.1.2), or raw deflate
 * without the zlib header, which servers long sent for it. The first two bytes tell which; the
 * chosen zlib stream's output is passed on at the reader's pace. An empty body is empty. Bytes after
 * the end of the deflate stream (a trailing CRLF, a second zlib stream) are ignored, as createInflate
 * ignores them.
 */
function deflateDecoder (): Transform {
  let inner: Transform | undefined
  let head: Buffer | undefined
  // zlib ends its stream where the deflate stream ends, maybe while input is left: during a write,
  // before flush could wait for it.
  let innerEnded = false
  let flushed: (() => void) | undefined
  const open = (start: Buffer): Transform => {
    const s = inner = (zlibHeader(start) ? zlib.createInflate : zlib.createInflateRaw)()
    s.on('data', (c: Buffer) => { if (!outer.push(c)) s.pause() })
    s.on('error', err => outer.destroy(err))
    s.once('end', () => { innerEnded = true; flushed?.() })
    return s
  }
  const outer: Transform = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      if (innerEnded) { done(); return }
      let s = inner
      if (s === undefined) {
        // A first byte alone waits for the next.
        chunk = head === undefined ? chunk : Buffer.concat([head, chunk])
        if (chunk.length < 2) { head = chunk.length === 1 ? chunk : undefined; done(); return }
        head = undefined
        s = open(chunk)
      }
      // A failed write's error comes as the stream's 'error', zlib's own.
      s.write(chunk, err => { if (err == null) done() })
    },
    flush (done) {
      let s = inner
      if (s === undefined) {
        if (head === undefined) { done(); return }
        // One byte in all: zlib says what is wrong with it.
        s = open(head)
        s.write(head)
      }
      if (innerEnded) { done(); return }
      flushed = done
      s.end()
    },
    read (size) {
      inner?.resume()
      Transform.prototype._read.call(this, size)
    },
    destroy (err, done) {
      inner?.destroy()
      done(err)
    }
  })
  return outer
}

/** A zlib decoder that ends an empty body as empty, not as the truncated stream zlib calls it. */
function emptyIsEmpty (d: Transform): Transform {
  const flush = d._flush.bind(d)
  d._flush = done => { if ((d as Transform & { bytesWritten: number }).bytesWritten === 0) done(); else flush(done) }
  return d
}

/**
 * A decoder for a body sent with `coding`. An empty body decodes to an empty one, as HTTP clients
 * take it; a truncated or corrupt one is an error, `blame(err)` when given (the error the decoder
 * then fails with).
 */
export function decoder (coding: Coding, blame?: (err: Error) => Error): Transform {
  const d = coding === 'deflate' ? deflateDecoder() : emptyIsEmpty((DECODERS[coding] as Factory)({}))
  if (blame !== undefined) {
    // zlib fails by destroy(err); the error handed on here is the one the stream emits.
    const destroy = d._destroy.bind(d)
    d._destroy = (err, done) => destroy(err, failure => done(failure == null ? failure : blame(failure)))
  }
  return d
}
