import { definePlugin } from '../../src/index.ts'
import { checkOpenTelemetry, OpenTelemetrySchema } from './schema.ts'

// The OpenTelemetry SDK costs about 0.1 s of CPU to load: only a config that traces pays it.
const loadSdk = () => Promise.all([import('./spans.ts'), import('./tracing.ts')])

/**
 * Traces requests with OpenTelemetry: a server span per request, a client span per upstream try,
 * exported in batches over OTLP/HTTP, off the request's path (an export failure never touches a
 * request; spans the queue cannot hold are dropped and counted). Priority 20: an observer; its
 * hooks see every request of the route, whoever answers it.
 */
export default definePlugin({
  name: 'opentelemetry',
  priority: 20,
  schema: OpenTelemetrySchema,
  check: checkOpenTelemetry,
  async setup (config, ctx) {
    const [{ RouteSpans }, { startTracing }] = await loadSdk()
    // One exporter per distinct settings for the whole config (most configs set it once, under plugins:).
    const tracing = ctx.shared(JSON.stringify(config), () => startTracing(config, ctx))
    tracing.routes.push(ctx.routeName)
    const spans = new RouteSpans(tracing, { name: ctx.routeName, path: ctx.routePath })
    return {
      onUpstreamTry: (req, target, attempt) => { spans.tryStarted(req, target, attempt) },
      onUpstreamTryEnd: (req, status, error) => { spans.tryEnded(req, status, error) },
      onFinished: (req, status, cut) => { spans.finished(req, status, cut) }
    }
  }
})
