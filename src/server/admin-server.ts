import fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { bearerMatches } from './admin/auth.ts'
import { adminBodies } from './admin/bodies.ts'
import { browserRefusal } from './admin/browser-guard.ts'
import { adminClientError, adminConnect } from './admin/client-error.ts'
import { configEndpoints } from './admin/config.ts'
import { Endpoints, pathOf } from './admin/endpoints.ts'
import { healthEndpoints } from './admin/health.ts'
import { inventoryEndpoints } from './admin/inventory.ts'
import { metricsEndpoints } from './admin/metrics.ts'
import { pluginEndpoints } from './admin/plugins.ts'
import { storeEndpoints } from './admin/stores.ts'
import type { AdminState } from './admin/state.ts'

export type { AdminState } from './admin/state.ts'

const fail = (reply: FastifyReply, status: number, error: string, message: string) => reply.code(status).send({ error, message })

/** Fastify's own 4xx answers, by a code of ours (its message says the rest). */
const CLIENT_ERRORS: Readonly<Record<number, string>> = { 413: 'body_too_large', 415: 'unsupported_media_type' }

/**
 * The admin listener (loopback by default): probes, the active config, reload, route and upstream
 * tables, metrics. Every answer is JSON (metrics aside), errors included; never a stack trace.
 * With admin.token set, everything but the probes needs `Authorization: Bearer <token>`.
 * Nothing a web page can send is answered (browser-guard.ts).
 */
export function createAdminServer (state: AdminState): FastifyInstance {
  const failed = (err: { statusCode?: number, message: string }, reply: FastifyReply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (status === 500) state.log.error({ err }, 'admin endpoint failed')
    return fail(reply, status, status === 500 ? 'internal_error' : CLIENT_ERRORS[status] ?? 'bad_request', status === 500 ? 'the admin endpoint failed; see the gateway log' : err.message)
  }
  const app = fastify({
    logger: false,
    return503OnClosing: false,
    // Closed last, once the gateway has drained: nothing on it (a scrape, a connection that sent nothing) may hold the stop.
    forceCloseConnections: true,
    // Fastify's own answers (a malformed URL such as /%zz; a request the HTTP parser rejects) in ours.
    frameworkErrors: (err, _req, reply) => failed(err, reply),
    clientErrorHandler: adminClientError
  })
  app.server.on('connect', adminConnect)
  adminBodies(app)
  const api = new Endpoints(app)

  app.addHook('onRequest', async (req, reply) => {
    // Read per request: the token is part of the config and changes with it on reload.
    const token = state.runtime.loaded.config.admin?.token
    const refusal = browserRefusal(req, token !== undefined)
    if (refusal !== undefined) return fail(reply, refusal.status, refusal.error, refusal.message)
    if (token === undefined || api.isOpen(pathOf(req.url)) || bearerMatches(req.headers.authorization, token)) return
    void reply.header('www-authenticate', 'Bearer realm="portcullis-admin"')
    return fail(reply, 401, 'unauthorized', 'this admin endpoint needs "Authorization: Bearer <admin.token>"')
  })

  healthEndpoints(api, state)
  configEndpoints(api, state)
  inventoryEndpoints(api, state)
  metricsEndpoints(api, state)
  storeEndpoints(api, state)
  const pluginEndpoint = pluginEndpoints(app, state, fail)

  app.setNotFoundHandler((req, reply) => {
    const path = pathOf(req.url)
    if (path.startsWith('/plugins/')) return pluginEndpoint(req, reply)
    const allowed = api.allowed(path)
    if (allowed === undefined) return fail(reply, 404, 'not_found', `no admin endpoint ${path}`)
    void reply.header('allow', allowed.join(', '))
    return fail(reply, 405, 'method_not_allowed', `${req.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`)
  })
  app.setErrorHandler((err: { statusCode?: number, message: string }, _req, reply) => failed(err, reply))
  return app
}
