import { definePlugin, toBytes } from '../../src/index.ts'
import { CODINGS, CompressSchema, DEFAULTS } from './schema.ts'
import { available, encoderFactory } from './codings.ts'
import { EncodingNegotiator } from './negotiate.ts'
import { describesTransformable, partOfTransformable, transformable, typeMatcher } from './eligible.ts'
import { compressResponse, describePart, describeResponse, type ResponseCompression } from './response.ts'
import { EncodedCopies } from './encoded-copies.ts'
import { acceptDecodable, decompressRequest } from './request.ts'

/**
 * Compresses responses as the client accepts (br, zstd, gzip, deflate), streaming; optionally
 * decodes compressed request bodies. Priority 880: above the cache (100-799), so that its response
 * hook runs after the cache's (its stream nearer the client, the stored body the upstream's) and
 * cache hits, answered at the cache's place, still pass through it.
 */
export default definePlugin({
  name: 'compress',
  priority: 880,
  schema: CompressSchema,
  check (config) {
    // zstd only, on a Node without it: the route would compress nothing, and say nothing of it.
    if (config.encodings === undefined || config.encodings.some(available)) return []
    return [{ path: ['encodings'], message: `none of these codings is available on this Node (${process.version}): zstd needs Node 22.15 or 23.8 and later; add gzip or br` }]
  },
  setup (config, ctx) {
    const offered = (config.encodings ?? DEFAULTS.encodings).filter(available)
    // The defaults' zstd is skipped quietly (documented); a listed one is worth a word.
    const skipped = config.encodings?.filter(c => !available(c)) ?? []
    if (skipped.length > 0) ctx.log.warn({ skipped }, `compress: ${skipped.join(', ')} not available on this Node (${process.version}), not offered`)
    const levels = { ...DEFAULTS.levels, ...config.levels }
    const responses = ctx.metrics.counter({
      name: 'portcullis_compress_responses_total',
      help: 'Responses worth compressing, by route and the coding sent (identity: plain, for a client that accepts no coding; a body the upstream encoded passed as it is: its coding).',
      labelNames: ['route', 'encoding']
    })
    const maxRatio = config.maxDecodedRatio ?? DEFAULTS.maxDecodedRatio
    const keepEncoded = toBytes(config.keepEncoded ?? DEFAULTS.keepEncoded)
    const kept = ctx.metrics.gauge({
      name: 'portcullis_compress_kept_bytes',
      help: 'Bytes of the encoded copies kept for bodies replied again and again (keepEncoded), with the bodies they keep alive, by route.',
      labelNames: ['route']
    }).labels(ctx.routeName)
    const negotiator = new EncodingNegotiator(offered)
    const compression: ResponseCompression = {
      negotiator,
      encoders: new Map(offered.map(c => [c, encoderFactory(c, levels[c])])),
      minSize: toBytes(config.minSize ?? DEFAULTS.minSize),
      decompressForClients: config.decompressForClients ?? DEFAULTS.decompressForClients,
      decodeBound: { maxSize: toBytes(config.maxDecodedSize ?? DEFAULTS.maxDecodedSize), maxRatio, sizeKey: 'maxDecodedSize' },
      // Not only those offered: a body the upstream encoded is passed as it is.
      sent: new Map([...CODINGS.filter(available), 'identity'].map(c => [c, responses.labels(ctx.routeName, c)])),
      copies: keepEncoded > 0 ? new EncodedCopies(keepEncoded, bytes => kept.set(bytes)) : undefined
    }
    const typeAllowed = typeMatcher(config.types ?? DEFAULTS.types)
    // Without decompressForClients an encoded answer goes as it is to every client: asking the upstream
    // for fewer codings would spare none of them one, and cost this client those it accepts.
    const rewrite = compression.decompressForClients
    const requests = config.requests ?? DEFAULTS.requests
    const requestBound = { maxSize: toBytes(config.maxDecodedRequestSize ?? DEFAULTS.maxDecodedRequestSize), maxRatio, sizeKey: 'maxDecodedRequestSize' }
    return {
      onRequest: rewrite || requests
        ? req => {
          if (rewrite) acceptDecodable(req, negotiator)
          return requests ? decompressRequest(req, requestBound) : undefined
        }
        : undefined,
      onResponse (res, req) {
        if (transformable(res, req, typeAllowed)) compressResponse(res, req, compression)
        else if (describesTransformable(res, req, typeAllowed)) describeResponse(res, req, compression)
        else if (partOfTransformable(res, typeAllowed)) describePart(res, compression)
      }
    }
  }
})
