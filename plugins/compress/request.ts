import { RequestRejected, type GatewayRequest, type PluginReply } from '../../src/index.ts'
import { refusal } from '../shared/refusal.ts'
import { DecodedTooLarge, MAX_LAYERS, available, decoders, requestDecoding, type DecodeBound } from './codings.ts'
import { CODINGS } from './schema.ts'
import { joined } from './eligible.ts'
import type { EncodingNegotiator } from './negotiate.ts'

// RFC 9110 15.5.16: a 415 for a content coding says, in Accept-Encoding, the codings the server takes.
const ACCEPTED = CODINGS.filter(available).join(', ')
const REFUSED = {
  unknown: 'the request body\'s Content-Encoding lists a coding the gateway cannot decode beside ones it can',
  deep: `the request body's Content-Encoding lists more than ${MAX_LAYERS} codings`
}

// Fields describing the encoded bytes (their length, digests) or the encoded representation (Repr-Digest,
// RFC 9530 2): wrong for the body the upstream gets, which could fail them or trust them.
const DECODED_AWAY = ['content-encoding', 'content-length', 'content-digest', 'repr-digest', 'content-md5', 'digest']
const DECODED_AWAY_SET = new Set(DECODED_AWAY)

/** A name that CGI, WSGI and Rack servers read as one of those: `Content_Digest` is HTTP_CONTENT_DIGEST there. */
const underscored = (name: string): boolean => name.includes('_') && DECODED_AWAY_SET.has(name.toLowerCase().replaceAll('_', '-'))

/**
 * Decodes a request body sent with Content-Encodings we know, so the upstream gets it plain. Past
 * `bound` it is refused 413, as request-size refuses a body past maxBody (and counts decoded bytes
 * too, running after compress); a list it cannot decode whole is refused, never passed on half-counted.
 */
export function decompressRequest (req: GatewayRequest, bound: DecodeBound): PluginReply | undefined {
  const encoding = joined(req.headers['content-encoding'])
  if (encoding === undefined) return
  const decoding = requestDecoding(encoding)
  if (decoding === 'pass') return
  if (typeof decoding === 'string') {
    const reply = refusal(415, 'unsupported_content_coding', REFUSED[decoding], req.id, req.hasBody)
    return { ...reply, headers: { ...reply.headers, 'accept-encoding': ACCEPTED } }
  }
  // Other errors pass as they are: zlib's (400 bad_body), and the refusal the chain fails the other layers with.
  const refuse = (err: Error): Error => err instanceof DecodedTooLarge
    ? new RequestRejected('request body too large decoded', refusal(413, 'body_too_large', `the request body is too large: ${err.message}`, req.id, true))
    : err
  for (const d of decoders(decoding, refuse, bound)) req.pipeBodyThrough(d)
  for (const name of DECODED_AWAY) req.headers[name] = undefined
  for (const name in req.headers) if (underscored(name)) req.headers[name] = undefined
}

/**
 * Sends upstream only the codings compress decodes here (negotiator.upstream): an answer in another
 * (zstd on Node 20) would be passed as it is, and a cache would serve it to every client. No header
 * goes as `identity`: without one the upstream may pick any coding (RFC 9110 12.5.3), where compress
 * sends such a client the body plain.
 */
export function acceptDecodable (req: GatewayRequest, negotiator: EncodingNegotiator): void {
  const accept = joined(req.headers['accept-encoding'])
  req.headers['accept-encoding'] = accept === undefined ? 'identity' : negotiator.upstream(accept)
}
