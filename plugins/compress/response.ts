import type { Transform } from 'node:stream'
import { UpstreamBodyInvalid, type GatewayRequest, type GatewayResponse, type HeaderMap } from '../../src/index.ts'
import { firstValue as first } from '../shared/first-value.ts'
import { addVary } from '../shared/vary.ts'
import { decodable, decoder } from './codings.ts'
import type { Coding } from './schema.ts'
import type { EncodingNegotiator } from './negotiate.ts'
import type { EncodedCopies } from './encoded-copies.ts'
import { Capture } from '../shared/body-streams.ts'
import { negotiate } from '@fastify/accept-negotiator'

export interface ResponseCompression {
  readonly negotiator: EncodingNegotiator
  readonly encoders: ReadonlyMap<string, (flush: boolean) => Transform>
  readonly minSize: number
  readonly decompressForClients: boolean
  /** Responses counted by the coding sent (`identity` for one decoded and sent plain). */
  readonly sent: ReadonlyMap<string, { inc: () => void }>
  /** Encoded copies of bodies replied again and again; undefined when off. */
  readonly copies: EncodedCopies | undefined
}

/** The body changes, so the length goes, and a strong validator becomes weak (RFC 9110 8.8.1). */
function bodyChanged (h: HeaderMap): void {
  h['content-length'] = undefined
  h['accept-ranges'] = undefined
  const etag = first(h.etag)
  if (etag !== undefined && etag.startsWith('"')) h.etag = `W/${etag}`
}

/** Encodes (or decodes, then encodes) a transformable response as the client accepts it. */
export function compressResponse (res: GatewayResponse, req: GatewayRequest, c: ResponseCompression): void {
  const h = res.headers
  const accept = first(req.clientHeaders['accept-encoding'])
  const encoded = first(h['content-encoding'])
  let decode: Coding | undefined
  if (encoded !== undefined && encoded.toLowerCase() !== 'identity') {
    // Already encoded: sent as is if the client takes it; else decoded (a stored response, say).
    decode = decodable(encoded)
    if (!c.decompressForClients || decode === undefined) return
    addVary(h, 'accept-encoding')
    if (accept !== undefined && negotiate(accept.toLowerCase(), [decode]) !== null) return
  } else {
    const length = first(h['content-length'])
    if (length !== undefined && Number(length) < c.minSize) return
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
    if (decode !== undefined) res.pipeThrough(decoder(decode, err => new UpstreamBodyInvalid(`the upstream's ${decode} body does not decode: ${err.message}`, { cause: err })))
    if (encoder !== undefined) res.pipeThrough(encoder(first(h['content-type'])?.startsWith('text/event-stream') === true))
    const copies = c.copies
    if (body !== undefined && copies !== undefined && copies.repeated(body)) {
      res.pipeThrough(new Capture(copies.maxBytes, out => { if (out !== undefined) copies.set(body, chosen, out) }))
    }
  }
  h['content-encoding'] = encoder === undefined ? undefined : chosen
  bodyChanged(h)
  if (copy !== undefined) h['content-length'] = String(copy.length)
}
