import zlib, { type BrotliOptions, type ZlibOptions } from 'node:zlib'
import type { Transform } from 'node:stream'
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
  deflate: zlib.createInflate
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
    : coding === 'zstd' ? { params: { [z.constants.ZSTD_c_compressionLevel as number]: level } } : { level }
  const kind = coding === 'br' ? c.BROTLI_OPERATION_FLUSH : coding === 'zstd' ? z.constants.ZSTD_e_flush as number : c.Z_SYNC_FLUSH
  const streaming = { ...params, flush: kind }
  return flush => flush ? create(streaming) : flushHeld(create(params), kind)
}

/**
 * A decoder for a body sent with `coding`. An empty body decodes to an empty one, as HTTP clients
 * take it (zlib calls no input a truncated stream); a truncated or corrupt one is an error,
 * `blame(err)` when given (the error the decoder then fails with).
 */
export function decoder (coding: Coding, blame?: (err: Error) => Error): Transform {
  const d = (DECODERS[coding] as Factory)({})
  const flush = d._flush.bind(d)
  d._flush = done => { if ((d as Transform & { bytesWritten: number }).bytesWritten === 0) done(); else flush(done) }
  if (blame !== undefined) {
    // zlib fails by destroy(err); the error handed on here is the one the stream emits.
    const destroy = d._destroy.bind(d)
    d._destroy = (err, done) => destroy(err, failure => done(failure == null ? failure : blame(failure)))
  }
  return d
}
