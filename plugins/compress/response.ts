import type { Transform } from 'node:stream'
import { UpstreamBodyInvalid, type GatewayRequest, type GatewayResponse, type HeaderMap } from '../../src/index.ts'
import { firstValue as first } from '../shared/first-value.ts'
import { addVary } from '../shared/vary.ts'
import { DecodedTooLarge, decoder, responseCoding, type DecodeBound } from './codings.ts'
import type { Coding } from './schema.ts'
import type { EncodingNegotiator } from './negotiate.ts'
import type { EncodedCopies } from './encoded-copies.ts'
import { Capture } from '../shared/body-streams.ts'
import { joined, typeMatcher } from './eligible.ts'

export interface ResponseCompression {
  readonly negotiator: EncodingNegotiator
  readonly encoders: ReadonlyMap<string, (flush: boolean) => Transform>
  readonly minSize: number
  readonly decompressForClients: boolean
  /** What decoding one body may put out (maxDecodedSize, maxDecodedRatio). */
  readonly decodeBound: DecodeBound
  /** Responses counted by the coding sent (`identity` for one decoded and sent plain), any coding compress knows. */
  readonly sent: ReadonlyMap<string, { inc: () => void }>
  /** Encoded copies of bodies replied again and again; undefined when off. */
  readonly copies: EncodedCopies | undefined
}

// Streams whose every write is a message the client waits for: flushed per write, not per block.
const flushed = typeMatcher(['text/event-stream', 'application/x-ndjson'])

/** Whether an ETag is not weak: a strong one, or one without quotes (`abc`, invalid) that a client may still compare strongly. */
const strong = (etag: string | undefined): etag is string => etag !== undefined && etag !== '' && !etag.startsWith('W/')

/** A strong validator becomes weak: the bytes differ, the meaning does not (RFC 9110 8.8.1). */
function weaken (h: HeaderMap): void {
  const etag = first(h.etag)
  if (strong(etag)) h.etag = `W/${etag}`
}

// Fields that describe the bytes sent (Content-Length, their ranges and digests) or the representation,
// content coding included (Repr-Digest, RFC 9530 2): wrong once compress changes the body.
const BODY_FIELDS = ['content-length', 'accept-ranges', 'content-digest', 'repr-digest', 'content-md5', 'digest']

/** The body changes, so the fields describing its bytes go, and a strong validator becomes weak. */
function bodyChanged (h: HeaderMap): void {
  for (const name of BODY_FIELDS) if (h[name] !== undefined) h[name] = undefined
  weaken(h)
}

/**
 * Gives a response without a body (HEAD, 304) the Vary and ETag the body's response would have for
 * this client, encoding nothing: a cache updating its stored copy from a 304 keeps them (RFC 9111 4.3.4).
 * A body the upstream encoded that the client would get decoded (and encoded again) is described as
 * sent: its Content-Encoding, no length (unknown). So is a HEAD of a plain body the GET would encode.
 */
export function describeResponse (res: GatewayResponse, req: GatewayRequest, c: ResponseCompression): void {
  const h = res.headers
  const accept = first(req.clientHeaders['accept-encoding'])
  const decode = responseCoding(joined(h['content-encoding']))
  if (decode !== 'identity') {
    if (!c.decompressForClients || decode === undefined) return
    addVary(h, 'accept-encoding')
    if (c.negotiator.accepts(accept, decode)) return
    const chosen = c.negotiator.negotiate(accept)
    h['content-encoding'] = c.encoders.has(chosen) ? chosen : undefined
    bodyChanged(h)
    return
  }
  // A label `identity` goes, whatever is sent: it is no coding, and the body goes plain or encoded.
  if (h['content-encoding'] !== undefined) h['content-encoding'] = undefined
  if (res.status === 304) {
    // A 304 tells neither the body's size nor whether the upstream had encoded it (nor, untyped, its
    // type): the client's copy tells whether it was sent changed, its ETag weakened.
    addVary(h, 'accept-encoding')
    if (weakenedCopy(first(req.clientHeaders['if-none-match']), first(h.etag))) weaken(h)
    return
  }
  if (tooSmall(first(h['content-length']), c.minSize)) return
  addVary(h, 'accept-encoding')
  const chosen = c.negotiator.negotiate(accept)
  if (c.encoders.has(chosen)) {
    h['content-encoding'] = chosen
    bodyChanged(h)
  }
}

/** Whether a plain body of `length` is below minSize, or known empty whatever minSize (encoded, it would not be). */
function tooSmall (length: string | undefined, minSize: number): boolean {
  return length !== undefined && Number(length) < Math.max(minSize, 1)
}

// RFC 9110 14.4: the complete length after the range, unless `*` (unknown).
const COMPLETE_LENGTH = /\/\s*(\d+)\s*$/

/**
 * Gives a 206 (partOfTransformable) the Vary its 200 would have (RFC 9110 15.3.7),
 * sending its part as it is: none for a part of a body below minSize (Content-Range's complete
 * length) or of one in a coding compress passes as it is.
 */
export function describePart (res: GatewayResponse, c: ResponseCompression): void {
  const h = res.headers
  const coding = responseCoding(joined(h['content-encoding']))
  if (coding !== 'identity') {
    if (c.decompressForClients && coding !== undefined) addVary(h, 'accept-encoding')
    return
  }
  if (!tooSmall(COMPLETE_LENGTH.exec(first(h['content-range']) ?? '')?.[1], c.minSize)) addVary(h, 'accept-encoding')
}

/** Whether If-None-Match names the weakened form of a strong ETag. */
const weakenedCopy = (ifNoneMatch: string | undefined, etag: string | undefined): boolean =>
  ifNoneMatch !== undefined && strong(etag) && ifNoneMatch.includes(`W/${etag}`)

/** Encodes (or decodes, then encodes) a transformable response as the client accepts it. */
export function compressResponse (res: GatewayResponse, req: GatewayRequest, c: ResponseCompression): void {
  const h = res.headers
  const accept = first(req.clientHeaders['accept-encoding'])
  // Every line: codings on two lines are a list, as on one (RFC 9110 5.3), passed as they are.
  const coding = responseCoding(joined(h['content-encoding']))
  // Several codings, or one we cannot decode: passed as they are.
  if (coding === undefined) return
  let decode: Coding | undefined
  if (coding !== 'identity') {
    // Already encoded: sent as is if the client takes it; else decoded (a stored response, say).
    decode = coding
    if (!c.decompressForClients) { c.sent.get(decode)?.inc(); return }
    addVary(h, 'accept-encoding')
    if (c.negotiator.accepts(accept, decode)) { c.sent.get(decode)?.inc(); return }
  } else {
    // A label `identity` goes, as from every body compress sends: it is no coding (too small ones too).
    if (h['content-encoding'] !== undefined) h['content-encoding'] = undefined
    if (tooSmall(first(h['content-length']), c.minSize)) return
    addVary(h, 'accept-encoding')
  }
  const chosen = c.negotiator.negotiate(accept)
  c.sent.get(chosen)?.inc()
  const encoder = c.encoders.get(chosen)
  if (encoder === undefined && decode === undefined) return
  // A body replied again and again (a cache hit) is sent from its kept copy in the chosen coding
  // (`identity`: decoded); undefined once a stream is added, the body sent then not the one replied.
  const body = res.replyBody
  const copy = body === undefined ? undefined : c.copies?.get(body, chosen)
  if (copy !== undefined) {
    res.replyBody = copy
  } else {
    if (decode !== undefined) {
      const blame = (err: Error): Error => new UpstreamBodyInvalid(`the upstream's ${decode} body ${err instanceof DecodedTooLarge ? 'is not decoded whole' : `does not decode: ${err.message}`}`, { cause: err })
      res.pipeThrough(decoder(decode, blame, c.decodeBound))
    }
    if (encoder !== undefined) {
      const streamed = flushed(first(h['content-type']) as string)
      const e = encoder(streamed)
      // The head goes out with the encoder's first byte: an event stream's, at once (gzip's header and
      // brotli's first bytes; zstd puts none out before input), not with its first event. Not for a body
      // decoded first: one that does not decode is answered 502 while the head is held.
      if (streamed && decode === undefined) (e as Transform & { flush: () => void }).flush()
      res.pipeThrough(e)
    }
    const copies = c.copies
    const room = body === undefined || copies === undefined ? 0 : copies.claim(body, chosen)
    // At the client's pace: nobody waits for this copy, and a client that does not read must not hold it.
    if (body !== undefined && copies !== undefined && room > 0) res.pipeThrough(new Capture(room, (out, tooLarge) => { copies.copied(body, chosen, out, tooLarge) }, { clientPace: true }))
  }
  h['content-encoding'] = encoder === undefined ? undefined : chosen
  bodyChanged(h)
  if (copy !== undefined) h['content-length'] = String(copy.length)
}
