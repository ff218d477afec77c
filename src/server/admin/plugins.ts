import type { FastifyInstance, FastifyReply } from 'fastify'
import { pathOf } from './endpoints.ts'
import type { AdminState } from './state.ts'

/** Endpoints plugins add under /plugins/<name>/ (ctx.admin), behind the admin token like the rest. */
export function pluginEndpoints (app: FastifyInstance, state: AdminState, fail: (reply: FastifyReply, status: number, error: string, message: string) => unknown): void {
  app.route({
    method: ['GET', 'POST', 'PUT', 'DELETE'],
    url: '/plugins/*',
    handler: async (req, reply) => {
      const path = pathOf(req.url)
      const answer = await state.pluginAdmin(req.method, path, req.query as Record<string, string>, req.body ?? null)
      if ('allowed' in answer) {
        if (answer.allowed.length === 0) return fail(reply, 404, 'not_found', `no admin endpoint ${path}`)
        void reply.header('allow', answer.allowed.join(', '))
        return fail(reply, 405, 'method_not_allowed', `${req.method} is not allowed on ${path} (allowed: ${answer.allowed.join(', ')})`)
      }
      return reply.code(answer.status ?? 200).send(answer.body ?? {})
    }
  })
}
