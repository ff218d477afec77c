import { Type, type Static } from '@sinclair/typebox'
import { ByteSize } from '../../src/index.ts'

export const CODINGS = ['br', 'zstd', 'gzip', 'deflate'] as const
export type Coding = typeof CODINGS[number]

export const DEFAULTS = {
  encodings: [...CODINGS] as Coding[],
  minSize: '1KiB',
  types: [
    'text/*', 'application/json', 'application/*+json', 'application/x-ndjson', 'application/javascript',
    'application/x-javascript', 'application/xml', 'application/*+xml', 'image/svg+xml', 'application/wasm'
  ],
  // Chosen for throughput: brotli 4 and gzip 6 cost a small fraction of their top levels' CPU (bench/compress.ts).
  levels: { br: 4, zstd: 3, gzip: 6, deflate: 6 },
  decompressForClients: true,
  // A 200 MB export at 20:1, logs at 50:1 pass; a bomb (gzip's reach 1,000:1, brotli's far more) stops at 1 MiB.
  maxDecodedSize: '512MiB',
  maxDecodedRatio: 200,
  requests: false,
  // Any client may send one: an upload decoding past 64 MiB through an API gateway is a bomb far more often than not.
  maxDecodedRequestSize: '64MiB',
  keepEncoded: '8MiB'
}

const Coding = Type.Union(CODINGS.map(c => Type.Literal(c)))
const MediaRange = Type.String({
  pattern: '^[a-z0-9!#$&^_.+-]+/(\\*|\\*\\+[a-z0-9!#$&^_.+-]+|[a-z0-9!#$&^_.+-]+)$',
  errorMessage: 'must be a media type in lower case: type/subtype, type/* or type/*+suffix'
})

export const CompressSchema = Type.Object({
  encodings: Type.Optional(Type.Array(Coding, {
    minItems: 1,
    uniqueItems: true,
    // No schema default: setup tells a list written (an unavailable coding warned of) from the defaults.
    description: 'Codings offered, in the server\'s order of preference (used between equal q-values). zstd is skipped when the Node running lacks zlib.createZstdCompress (with a warning when listed). Default [br, zstd, gzip, deflate].'
  })),
  minSize: Type.Optional(ByteSize({ default: DEFAULTS.minSize, description: 'Bodies whose Content-Length is smaller are sent as they are (bodies of unknown length are compressed): bytes, or a size such as 1KiB.' })),
  types: Type.Optional(Type.Array(MediaRange, { default: DEFAULTS.types, description: 'Content types worth compressing: exact, type/* or type/*+suffix.' })),
  levels: Type.Optional(Type.Object({
    br: Type.Optional(Type.Integer({ minimum: 0, maximum: 11, default: DEFAULTS.levels.br, description: 'Brotli quality.' })),
    zstd: Type.Optional(Type.Integer({ minimum: 1, maximum: 22, default: DEFAULTS.levels.zstd, description: 'zstd level.' })),
    gzip: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, default: DEFAULTS.levels.gzip, description: 'gzip level.' })),
    deflate: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, default: DEFAULTS.levels.deflate, description: 'deflate level.' }))
  }, { additionalProperties: false, default: {}, description: 'Compression level per coding.' })),
  decompressForClients: Type.Optional(Type.Boolean({
    default: DEFAULTS.decompressForClients,
    description: 'A response already encoded in a coding the client does not accept (a cached one, say) is decoded, then encoded as the client accepts, or sent plain.'
  })),
  maxDecodedSize: Type.Optional(ByteSize({
    minimum: 1,
    default: DEFAULTS.maxDecodedSize,
    description: 'At most this many bytes are decoded from one response body (decompressForClients, a cache hit\'s too): past it the response is cut, as one whose body does not decode (502 before its head). Request bodies: maxDecodedRequestSize.'
  })),
  maxDecodedRatio: Type.Optional(Type.Integer({
    minimum: 0,
    default: DEFAULTS.maxDecodedRatio,
    description: 'Past 1 MiB decoded, a body decoded (a response, or a request with requests: true) may decode to at most this many times the encoded bytes read so far: past it the response is cut, as past maxDecodedSize, or the request refused, as past maxDecodedRequestSize. 0 turns it off.'
  })),
  keepEncoded: Type.Optional(ByteSize({
    minimum: 0,
    default: DEFAULTS.keepEncoded,
    description: 'Memory (per route) for encoded (or decoded) copies of bodies a plugin replies with again and again, such as a cache\'s stored responses: each is encoded once per coding sent, then sent from memory. Least recently used copies go first; 0 turns it off.'
  })),
  requests: Type.Optional(Type.Boolean({
    default: DEFAULTS.requests,
    description: 'Decode request bodies sent with Content-Encoding (gzip, deflate, br, zstd) before the upstream gets them, bounded by maxDecodedRequestSize and maxDecodedRatio (and request-size\'s maxBody, which counts decoded bytes).'
  })),
  maxDecodedRequestSize: Type.Optional(ByteSize({
    minimum: 1,
    default: DEFAULTS.maxDecodedRequestSize,
    description: 'With requests: true, at most this many bytes are decoded from one request body: past it the request is refused (413 body_too_large) and the upstream request aborted, as request-size refuses a body past maxBody.'
  }))
}, { additionalProperties: false })

export type CompressConfig = Static<typeof CompressSchema>
