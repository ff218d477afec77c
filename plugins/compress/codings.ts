import zlib, { type BrotliOptions, type ZlibOptions } from 'node:zlib'
import { Transform, type TransformOptions } from 'node:stream'
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
  gzip: zlib.createGunzip, // decoder() reads the members itself (gzipDecoder)
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

/** One entry of a Content-Encoding list: `identity` for none (identity, or empty: RFC 9110 5.6.1.2), else the coding if we decode it. */
function entry (item: string): Coding | 'identity' | undefined {
  const v = item.trim()
  return v === '' || v.toLowerCase() === 'identity' ? 'identity' : decodable(v)
}

/** A Content-Encoding list's codings (RFC 9110 8.4: in the order applied; lines joined), outermost first, identity ones left out; undefined for one we cannot decode. */
function layers (value: string): Array<Coding | undefined> {
  const codings: Array<Coding | undefined> = []
  for (const item of value.split(',')) {
    const coding = entry(item)
    if (coding !== 'identity') codings.unshift(coding)
  }
  return codings
}

/**
 * How to decode a request body sent with Content-Encoding `value`: the codings to undo, outermost
 * first; `pass` to send it as it is (none, `identity` entries only, or only codings the gateway does
 * not know, like one such coding); `unknown` (one it knows beside one it does not) or `deep` (more
 * than MAX_LAYERS) to refuse it: passed on, a bomb in it would reach the upstream uncounted by request-size.
 */
export function requestDecoding (value: string): Coding[] | 'pass' | 'unknown' | 'deep' {
  if (!value.includes(',')) {
    const coding = entry(value)
    return coding === undefined || coding === 'identity' ? 'pass' : [coding]
  }
  const codings = layers(value)
  if (codings.every(c => c === undefined)) return 'pass'
  if (codings.includes(undefined)) return 'unknown'
  return codings.length > MAX_LAYERS ? 'deep' : codings as Coding[]
}

/**
 * What a response's Content-Encoding says of its body, read as requestDecoding reads a request's:
 * `identity` for none (absent, or identity and empty entries only), its one coding if we decode it
 * (`identity, gzip` is gzip), else undefined (one we cannot decode, or several: passed as they are).
 */
export function responseCoding (value: string | undefined): Coding | 'identity' | undefined {
  if (value === undefined) return 'identity'
  if (!value.includes(',')) return entry(value)
  const codings = layers(value)
  return codings.length === 0 ? 'identity' : codings.length === 1 ? codings[0] : undefined
}

// RFC 9659 3: zstd in HTTP has at most an 8 MiB window (2^23), and browsers refuse a frame asking for
// more. Levels 20-22 ask for 32 to 128 MiB on a stream of unknown size; 19 and below for 8 MiB at most.
const ZSTD_WINDOW_LOG = 23
const ZSTD_WIDE_LEVEL = 20
// A stream of unknown size (every response) gets the match tables of its level's largest row
// (lib/compress/clevels.h): from level 9 a hash table over 2^20 entries, from 13 a chain table over
// 2^21, up to 2^25 and 2^27 at 22. Each is zeroed per response and held until it ends: 80 MB at 19,
// 640 MB at 22. Held to 2^20 and 2^21 (under 25 MB a stream at any level, Node 24), they gave the same
// bytes on JSON bodies up to 700 KiB, at most 0.02% more on 7 MiB, in a tenth to a half of the CPU.
const ZSTD_HASH_LOG = 20
const ZSTD_WIDE_HASH_LEVEL = 9
const ZSTD_CHAIN_LOG = 21
const ZSTD_WIDE_CHAIN_LEVEL = 13

function zstdParams (level: number): Record<number, number> {
  const k = z.constants
  const params = { [k.ZSTD_c_compressionLevel as number]: level }
  // Set only where the level's own is wider: a smaller one costs less memory per stream.
  if (level >= ZSTD_WIDE_LEVEL) params[k.ZSTD_c_windowLog as number] = ZSTD_WINDOW_LOG
  if (level >= ZSTD_WIDE_HASH_LEVEL) params[k.ZSTD_c_hashLog as number] = ZSTD_HASH_LOG
  if (level >= ZSTD_WIDE_CHAIN_LEVEL) params[k.ZSTD_c_chainLog as number] = ZSTD_CHAIN_LOG
  return params
}

// A flushed stream (server-sent events) may stay open for hours, mostly idle, its encoder held all
// along: it gets a 4 KiB zlib window (memLevel 4) and brotli a 64 KiB one at quality 3 at most (2
// saves no memory and packs worse). The RSS a stream took (Node 20, 1 KB events): after one, gzip 220
// → 100 KB, br 4 530 → 285 KB; after 440 KB, gzip 300 → 205 KB, br 4 1,060 → 515 KB; bytes sent alike.
const STREAM_ZLIB = { windowBits: 12, memLevel: 4 }
const STREAM_BROTLI_WINDOW = 16
const STREAM_BROTLI_QUALITY = 3

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
  const brotli = (quality: number, window: number): ZlibOptions & BrotliOptions => ({ params: { [c.BROTLI_PARAM_QUALITY]: quality, [c.BROTLI_PARAM_LGWIN]: window } })
  const params = coding === 'br' ? brotli(level, 18) : coding === 'zstd' ? { params: zstdParams(level) } : { level }
  const kind = coding === 'br' ? c.BROTLI_OPERATION_FLUSH : coding === 'zstd' ? z.constants.ZSTD_e_flush as number : c.Z_SYNC_FLUSH
  const small = coding === 'br' ? brotli(Math.min(level, STREAM_BROTLI_QUALITY), STREAM_BROTLI_WINDOW) : coding === 'zstd' ? params : { ...params, ...STREAM_ZLIB }
  const streaming = { ...small, flush: kind }
  return flush => flush ? create(streaming) : flushHeld(create(params), kind)
}

/** RFC 1950 2.2: a zlib header: method 8 (deflate), a window of at most 32 KiB, the two bytes a multiple of 31. */
function zlibHeader (b: Buffer): boolean {
  if (b.length < 2) return false
  const h = b.readUInt16BE(0)
  return (h & 0x0f00) === 0x0800 && h >> 12 <= 7 && h % 31 === 0
}

/**
 * A zlib inflate stream a decoder of ours (`outer`) feeds, its output pushed there at the reader's
 * pace (outer's read resumes it). zlib ends it where its deflate stream ends, maybe within a chunk,
 * the rest of that chunk not taken: `write` hands the rest on once all the output is out.
 */
class Inflating {
  readonly #s: Transform & { bytesWritten: number }
  #fed = 0
  #ended = false
  #onEnd: (() => void) | undefined

  constructor (s: Transform & { bytesWritten: number }, outer: Transform, onData?: (c: Buffer) => void) {
    this.#s = s
    s.on('data', (c: Buffer) => { onData?.(c); if (!outer.push(c)) s.pause() })
    s.on('error', err => outer.destroy(err))
    s.once('end', () => { this.#ended = true; this.#onEnd?.() })
  }

  /** Writes `chunk`; `then` gets the bytes after the end of the deflate stream, or undefined while it goes on. */
  write (chunk: Buffer, then: (left: Buffer | undefined) => void): void {
    const s = this.#s
    this.#fed += chunk.length
    // A failed write's error comes as the stream's 'error', zlib's own.
    s.write(chunk, err => {
      if (err != null) return
      // Input not taken: zlib ended the stream (ended at the previous chunk's end, it takes none of this one).
      const left = this.#fed - s.bytesWritten
      if (left === 0) then(undefined)
      else this.#whenEnded(() => { then(chunk.subarray(chunk.length - left)) })
    })
  }

  /** Ends the input, `then` once all the output is out; a deflate stream cut short fails instead. */
  end (then: () => void): void {
    this.#whenEnded(then)
    this.#s.end()
  }

  /** The encoded bytes zlib took so far (not those written and still queued). */
  get taken (): number { return this.#s.bytesWritten }

  resume (): void { this.#s.resume() }
  destroy (): void { this.#s.destroy() }

  #whenEnded (then: () => void): void {
    const done = (): void => { this.#s.destroy(); then() }
    if (this.#ended) done()
    else this.#onEnd = done
  }
}

/** A decoder's read and destroy, for one of ours that feeds `inner()`: its output at the reader's pace, destroyed with it. */
function paced (inner: () => Inflating | undefined): Pick<TransformOptions, 'read' | 'destroy'> {
  return {
    read (size) {
      inner()?.resume()
      Transform.prototype._read.call(this, size)
    },
    destroy (err, done) {
      inner()?.destroy()
      done(err)
    }
  }
}

/**
 * `deflate` read as browsers read it: the zlib format it names (RFC 9110 8.4.1.2), or raw deflate
 * without the zlib header, which servers long sent for it. The first two bytes tell which. An empty
 * body is empty. Bytes after the end of the deflate stream (a trailing CRLF, a second zlib stream)
 * are ignored, as createInflate ignores them.
 */
function deflateDecoder (): Decoding {
  let inner: Inflating | undefined
  let head: Buffer | undefined
  let after = false
  const open = (start: Buffer): Inflating => (inner = new Inflating((zlibHeader(start) ? zlib.createInflate : zlib.createInflateRaw)(), outer))
  const outer: Transform = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      if (after) { done(); return }
      let s = inner
      if (s === undefined) {
        // A first byte alone waits for the next.
        chunk = head === undefined ? chunk : Buffer.concat([head, chunk])
        if (chunk.length < 2) { head = chunk.length === 1 ? chunk : undefined; done(); return }
        head = undefined
        s = open(chunk)
      }
      s.write(chunk, left => { after = left !== undefined; done() })
    },
    flush (done) {
      if (after) { done(); return }
      if (inner !== undefined) { inner.end(done); return }
      if (head === undefined) { done(); return }
      // One byte in all: zlib says what is wrong with it.
      const s = open(head)
      s.write(head, () => {})
      s.end(done)
    },
    ...paced(() => inner)
  })
  return { stream: outer, taken: () => inner?.taken ?? 0 }
}

/** An error as zlib's: its message and code. */
function zlibError (message: string, code: 'Z_DATA_ERROR' | 'Z_BUF_ERROR' = 'Z_DATA_ERROR'): Error {
  return Object.assign(new Error(message), { code, errno: zlib.constants[code] })
}

// RFC 1952 2.3.1: the header's flags.
const FHCRC = 2
const FEXTRA = 4
const FNAME = 8
const FCOMMENT = 16
const FRESERVED = 0xe0
const FIXED_HEADER = 10

/**
 * A gzip member's header (RFC 1952 2.3) read as its bytes come, refused as zlib refuses it. Of an
 * extra field, a name or a comment, however long, no more is held than its length or end needs.
 */
class GzipHeader {
  /** Bytes taken so far. */
  seen = 0
  // The fixed part (10 bytes), then the extra field's length or the header's CRC.
  #held = Buffer.alloc(0)
  #flags = -1
  #skip = 0
  #crc = 0

  /**
   * Takes the header's bytes from `b`: the bytes after it, undefined while it goes on, `not gzip`
   * for bytes that do not start with the gzip magic (1f 8b); throws zlib's error for a bad header.
   */
  take (b: Buffer): Buffer | undefined | 'not gzip' {
    let at = 0
    /** Moves bytes of b onto #held until it has `n`: whether it has. */
    const hold = (n: number, summed: boolean): boolean => {
      const part = b.subarray(at, at + n - this.#held.length)
      at += part.length
      this.seen += part.length
      if (summed) this.#crc = zlib.crc32(part, this.#crc)
      this.#held = Buffer.concat([this.#held, part])
      return this.#held.length === n
    }
    /** Skips bytes of b through a zero: whether it came. */
    const zeroEnded = (): boolean => {
      const zero = b.indexOf(0, at)
      const part = b.subarray(at, zero === -1 ? b.length : zero + 1)
      at += part.length
      this.seen += part.length
      this.#crc = zlib.crc32(part, this.#crc)
      return zero !== -1
    }
    if (this.#flags === -1) {
      const whole = hold(FIXED_HEADER, true)
      const h = this.#held
      // Checked as soon as they come, as zlib does: the magic, then the method and flags, 16 bits each.
      if (h.length >= 2 && (h[0] !== 0x1f || h[1] !== 0x8b)) return 'not gzip'
      if (h.length >= 4 && h[2] !== 8) throw zlibError('unknown compression method')
      if (h.length >= 4 && ((h[3] as number) & FRESERVED) !== 0) throw zlibError('unknown header flags set')
      if (!whole) return
      this.#flags = h[3] as number
      this.#held = Buffer.alloc(0)
      this.#skip = -1
    }
    if ((this.#flags & FEXTRA) !== 0) {
      if (this.#skip === -1) {
        if (!hold(2, true)) return
        this.#skip = this.#held.readUInt16LE(0)
        this.#held = Buffer.alloc(0)
      }
      const part = b.subarray(at, at + this.#skip)
      at += part.length
      this.seen += part.length
      this.#crc = zlib.crc32(part, this.#crc)
      this.#skip -= part.length
      if (this.#skip > 0) return
      this.#flags &= ~FEXTRA
    }
    if ((this.#flags & FNAME) !== 0) {
      if (!zeroEnded()) return
      this.#flags &= ~FNAME
    }
    if ((this.#flags & FCOMMENT) !== 0) {
      if (!zeroEnded()) return
      this.#flags &= ~FCOMMENT
    }
    if ((this.#flags & FHCRC) !== 0) {
      if (!hold(2, false)) return
      if (this.#held.readUInt16LE(0) !== (this.#crc & 0xffff)) throw zlibError('header crc mismatch')
      this.#flags &= ~FHCRC
    }
    return b.subarray(at)
  }
}

/**
 * gzip read as browsers read it: its members one after another (RFC 1952 2.2), each checked as zlib
 * checks it; anything after a member that is not another (a trailing CRLF, padding) is ignored, as
 * browsers ignore it, not refused as createGunzip refuses it. An empty body is empty.
 */
function gzipDecoder (): Decoding {
  let phase: 'header' | 'body' | 'trailer' | 'after' = 'header'
  let header = new GzipHeader()
  let members = 0
  let inner: Inflating | undefined
  // The encoded bytes the members before `inner` took.
  let earlier = 0
  let crc = 0
  let size = 0
  let trailer = Buffer.alloc(0)

  /** Takes `chunk`, then calls `done`. */
  const take = (chunk: Buffer, done: (err?: Error) => void): void => {
    while (chunk.length > 0 && phase !== 'after') {
      if (phase === 'body') {
        (inner as Inflating).write(chunk, left => {
          if (left !== undefined) phase = 'trailer'
          take(left ?? Buffer.alloc(0), done)
        })
        return
      }
      if (phase === 'header') {
        let rest: Buffer | undefined | 'not gzip'
        try { rest = header.take(chunk) } catch (err) { done(err as Error); return }
        if (rest === 'not gzip') {
          if (members === 0) { done(zlibError('incorrect header check')); return }
          phase = 'after'
        } else if (rest !== undefined) {
          crc = size = 0
          earlier += inner?.taken ?? 0
          inner = new Inflating(zlib.createInflateRaw(), outer, c => { crc = zlib.crc32(c, crc); size += c.length })
          phase = 'body'
        }
        chunk = rest instanceof Buffer ? rest : Buffer.alloc(0)
        continue
      }
      // RFC 1952 2.3.1: CRC32 and ISIZE, the length modulo 2^32; each checked as soon as it comes, as zlib does.
      const need = 8 - trailer.length
      trailer = Buffer.concat([trailer, chunk.subarray(0, need)])
      chunk = chunk.subarray(need)
      if (trailer.length >= 4 && trailer.readUInt32LE(0) !== crc) { done(zlibError('incorrect data check')); return }
      if (trailer.length < 8) break
      if (trailer.readUInt32LE(4) !== size % 2 ** 32) { done(zlibError('incorrect length check')); return }
      members++
      header = new GzipHeader()
      trailer = Buffer.alloc(0)
      phase = 'header'
    }
    done()
  }

  const outer: Transform = new Transform({
    transform (chunk: Buffer, _encoding, done) { take(chunk, done) },
    flush (done) {
      const end = (): void => {
        // Nothing of a member (an empty body), or after a member too little to tell one (a lone 1f).
        if (phase === 'after' || (phase === 'header' && header.seen < (members === 0 ? 1 : 2))) done()
        else done(zlibError('unexpected end of file', 'Z_BUF_ERROR'))
      }
      if (phase === 'body') (inner as Inflating).end(() => { phase = 'trailer'; end() })
      else end()
    },
    ...paced(() => inner)
  })
  return { stream: outer, taken: () => earlier + (inner?.taken ?? 0) }
}

/** A zlib decoder that ends an empty body as empty, not as the truncated stream zlib calls it. */
function emptyIsEmpty (d: Transform): Transform {
  const flush = d._flush.bind(d)
  d._flush = done => { if ((d as Transform & { bytesWritten: number }).bytesWritten === 0) done(); else flush(done) }
  return d
}

/** A decoder, and the encoded bytes its decoding took so far. */
interface Decoding { readonly stream: Transform, readonly taken: () => number }

/**
 * What one decode may put out: at most `maxSize` bytes (`sizeKey` names the setting), and past
 * RATIO_FREE, at most `maxRatio` (0: any) times the encoded bytes it took.
 */
export interface DecodeBound { readonly maxSize: number, readonly maxRatio: number, readonly sizeKey: string }

/** Up to this many decoded bytes, any ratio goes: a small body costs little, and its ratio says little. */
export const RATIO_FREE = 1024 * 1024

/** A decode that went past its bound (the error a bounded decoder fails with, before `blame`). */
export class DecodedTooLarge extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'DecodedTooLarge'
  }
}

/**
 * Fails `d` once its output goes past `bound`, the ratio to `taken()` encoded bytes, counted as it
 * is pushed (zlib pushes its own chunks through d.push, as ours do): a bomb of a few KiB is stopped
 * there, not decoded whole.
 */
function bounded (d: Transform, taken: () => number, { maxSize, maxRatio, sizeKey }: DecodeBound): Transform {
  const push = d.push.bind(d)
  let out = 0
  d.push = (chunk: Buffer | null, encoding?: BufferEncoding): boolean => {
    if (chunk === null) return push(chunk, encoding)
    out += chunk.length
    if (out > maxSize) d.destroy(new DecodedTooLarge(`it decodes to more than ${maxSize} bytes (${sizeKey})`))
    else if (maxRatio > 0 && out > RATIO_FREE && out > maxRatio * taken()) d.destroy(new DecodedTooLarge(`it decodes to over ${maxRatio} times its size (maxDecodedRatio): ${out} bytes from ${taken()}`))
    else return push(chunk, encoding)
    return false
  }
  return d
}

/** An unbounded decoder for `coding`. */
function decoding (coding: Coding): Decoding {
  if (coding === 'deflate') return deflateDecoder()
  if (coding === 'gzip') return gzipDecoder()
  const stream = emptyIsEmpty((DECODERS[coding] as Factory)({})) as Transform & { bytesWritten: number }
  return { stream, taken: () => stream.bytesWritten }
}

/**
 * Decoders for a body sent with `codings` (outermost first), to pipe one into the next. An empty
 * body decodes to an empty one, as HTTP clients take it; a truncated or corrupt one is an error,
 * `blame(err)` when given (the error the decoder then fails with), as is one decoding past `bound`
 * (DecodedTooLarge). Each layer is bounded, its ratio to the bytes the first took (the body as
 * sent): layers multiply their ratios, and one may put out bytes the next only skips (a gzip name).
 */
export function decoders (codings: readonly Coding[], blame?: (err: Error) => Error, bound?: DecodeBound): Transform[] {
  const layers = codings.map(decoding)
  const sent = (layers[0] as Decoding).taken
  return layers.map(({ stream }) => {
    const d = bound === undefined ? stream : bounded(stream, sent, bound)
    if (blame !== undefined) {
      // zlib fails by destroy(err); the error handed on here is the one the stream emits.
      const destroy = d._destroy.bind(d)
      d._destroy = (err, done) => destroy(err, failure => done(failure == null ? failure : blame(failure)))
    }
    return d
  })
}

/** The decoder for a body sent with `coding`, as decoders() makes them. */
export function decoder (coding: Coding, blame?: (err: Error) => Error, bound?: DecodeBound): Transform {
  return decoders([coding], blame, bound)[0] as Transform
}
