import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PluginAdminQuery, PluginAdminReply } from '../../plugins/admin-routes.ts'
import { pathOf } from './endpoints.ts'
import type { AdminCall, AdminState } from './state.ts'

/** A plugin admin reply as it goes out: `json` undefined for a reply without content (204, 304). */
export interface SendableReply { readonly status: number, readonly body: unknown, readonly json: string | undefined }

/**
 * A plugin handler's `reply` to `endpoint` as the admin API sends it: status 200 to 599 (default
 * 200); body as JSON (default `{}`; a string too, since every admin answer is JSON), none for a 204
 * or 304 (RFC 9110 8.6: a body given is dropped). Throws, naming the endpoint, on one that cannot be
 * sent: another status (a 1xx would announce another response), a body JSON cannot serialize.
 */
export function sendableReply (endpoint: string, reply: PluginAdminReply): SendableReply {
  const status = reply.status ?? 200
  if (!Number.isInteger(status) || status < 200 || status > 599) throw new TypeError(`the plugin admin endpoint ${endpoint} replied status ${String(status)}: not an integer from 200 to 599`)
  if (status === 204 || status === 304) return { status, body: undefined, json: undefined }
  const body = reply.body ?? {}
  let json: string | undefined
  try {
    json = JSON.stringify(body) as string | undefined
  } catch (err) {
    throw new TypeError(`the plugin admin endpoint ${endpoint} replied with a body JSON cannot serialize: ${(err as Error).message}`)
  }
  if (json === undefined) throw new TypeError(`the plugin admin endpoint ${endpoint} replied with a body JSON cannot serialize: a ${typeof body}`)
  return { status, body, json }
}

/** A plugin endpoint's GET answers HEAD too: listed beside it. */
const withHead = (allowed: string[]) => allowed.flatMap(m => m === 'GET' ? ['GET', 'HEAD'] : [m])

/**
 * Endpoints plugins add under /plugins/<name>/ (ctx.admin), behind the admin token like the rest.
 * Returns the handler, for the not-found handler to answer the methods not routed here (PATCH,
 * OPTIONS, ...): a plugin endpoint never has them, so they get its 405 with Allow (or 404).
 * `audit`: the call as its audit line names it, and to say it reached no endpoint (404, 405: not audited).
 */
export function pluginEndpoints (app: FastifyInstance, state: AdminState, fail: (reply: FastifyReply, status: number, error: string, message: string) => unknown,
  audit: { callOf (req: FastifyRequest): AdminCall, unrouted (req: FastifyRequest): void }): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = pathOf(req.url)
    // HEAD runs the GET endpoint; Fastify sends its headers without the body.
    const method = req.method === 'HEAD' ? 'GET' : req.method
    const answer = await state.pluginAdmin(method, path, req.query as PluginAdminQuery, req.body ?? null, audit.callOf(req))
    if ('allowed' in answer) {
      audit.unrouted(req)
      if (answer.allowed.length === 0) return fail(reply, 404, 'not_found', `no admin endpoint ${path}`)
      const allowed = withHead(answer.allowed).join(', ')
      void reply.header('allow', allowed)
      return fail(reply, 405, 'method_not_allowed', `${req.method} is not allowed on ${path} (allowed: ${allowed})`)
    }
    // A reply that cannot be sent throws: the error handler answers 500 internal_error and logs it.
    const { status, json } = sendableReply(`${method} ${path}`, answer)
    if (json === undefined) return reply.code(status).send()
    return reply.code(status).type('application/json; charset=utf-8').send(json)
  }
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE'], url: '/plugins/*', handler })
  return handler
}
