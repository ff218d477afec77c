import { definePlugin, toBytes } from '../../src/index.ts'
import { refusal } from '../shared/refusal.ts'
import { BodyLimit, headersOver, targetLength } from './limits.ts'
import { DEFAULTS, RequestSizeSchema } from './schema.ts'

/**
 * Refuses requests too large: URL (414), headers (431), body (413). Priority 860: after auth, acl
 * and rate-limit (950), so a refused request has used up quota (Kong's request-size-limiting, 951,
 * runs before its acl and rate-limiting); after compress (880), so a decoded body is what it counts.
 */
export default definePlugin({
  name: 'request-size',
  priority: 860,
  schema: RequestSizeSchema,
  // A limit the route leaves out, whose default is above the top-level one: a route raising one on
  // purpose (an upload route's maxBody) writes it, even as the default's value, and is not warned of.
  replacing (top, route) {
    return (['maxBody', 'maxUrl', 'maxHeaders', 'maxHeaderBytes'] as const).flatMap(key => {
      const was = top[key] ?? DEFAULTS[key]
      return route[key] === undefined && toBytes(DEFAULTS[key]) > toBytes(was) ? [`${key} goes up from ${was} to ${DEFAULTS[key]} (the default)`] : []
    })
  },
  setup (config, ctx) {
    const maxBody = toBytes(config.maxBody ?? DEFAULTS.maxBody)
    const maxUrl = config.maxUrl ?? DEFAULTS.maxUrl
    const maxHeaders = config.maxHeaders ?? DEFAULTS.maxHeaders
    const maxHeaderBytes = toBytes(config.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes)
    const refused = ctx.metrics.counter({
      name: 'portcullis_request_size_refused_total',
      help: 'Requests refused by request-size, by route and what was too large (body, url, headers).',
      labelNames: ['route', 'reason']
    })
    const count = { body: refused.labels(ctx.routeName, 'body'), url: refused.labels(ctx.routeName, 'url'), headers: refused.labels(ctx.routeName, 'headers') }
    const onBodyCut = () => count.body.inc()
    return {
      onRequest (req) {
        const raw = req.raw
        if (targetLength(raw.url as string) > maxUrl) {
          count.url.inc()
          return refusal(414, 'url_too_long', `the request URL is longer than ${maxUrl} bytes`, req.id)
        }
        if (headersOver(raw, maxHeaders, maxHeaderBytes)) {
          count.headers.inc()
          return refusal(431, 'headers_too_large', `the request has more than ${maxHeaders} headers or more than ${maxHeaderBytes} bytes of them`, req.id)
        }
        const length = req.clientHeaders['content-length']
        if (length !== undefined && Number(length) > maxBody) {
          count.body.inc()
          return refusal(413, 'body_too_large', `the request body is larger than ${maxBody} bytes`, req.id, true)
        }
        if (req.upgrade && length === undefined && req.hasBody) {
          // An upgrade's body is tunnel data, never read as a body: one of unknown length cannot be counted.
          count.body.inc()
          return refusal(413, 'body_too_large', `an upgrade's body must declare its length (Content-Length), at most ${maxBody} bytes`, req.id, true)
        }
        // A Content-Length still sent upstream is exact (Node reads no more); otherwise count the bytes.
        if (req.headers['content-length'] === undefined && req.hasBody) {
          req.pipeBodyThrough(new BodyLimit(maxBody, req.id, onBodyCut))
        }
      }
    }
  }
})
