import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { pathOf } from './endpoints.ts'
import type { AdminState } from './state.ts'

/**
 * Endpoints plugins add under /plugins/<name>/ (ctx.admin), behind the admin token like the rest.
 * Returns the handler, for the not-found handler to answer the methods not routed here (PATCH,
 * OPTIONS, ...): a plugin endpoint never has them, so they get its 405 with Allow (or 404).
 */
export function pluginEndpoints (app: FastifyInstance, state: AdminState, fail: (reply: FastifyReply, status: number, error: string, message: string) => unknown): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = pathOf(req.url)
    const answer = await state.pluginAdmin(req.method, path, req.query as Record<string, string>, req.body ?? null)
    if ('allowed' in answer) {
      if (answer.allowed.length === 0) return fail(reply, 404, 'not_found', `no admin endpoint ${path}`)
      void reply.header('allow', answer.allowed.join(', '))
      return fail(reply, 405, 'method_not_allowed', `${req.method} is not allowed on ${path} (allowed: ${answer.allowed.join(', ')})`)
    }
    return reply.code(answer.status ?? 200).send(answer.body ?? {})
  }
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE'], url: '/plugins/*', handler })
  return handler
}
