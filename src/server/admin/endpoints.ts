import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

type Handler = (request: FastifyRequest, reply: FastifyReply) => unknown

/**
 * The admin API's endpoint table. Knowing every path's methods lets a wrong method get 405 with
 * Allow (Fastify alone answers 404), and marks the few endpoints open without the admin token.
 */
export class Endpoints {
  readonly #app: FastifyInstance
  readonly #methods = new Map<string, string[]>()
  readonly #open = new Set<string>()

  constructor (app: FastifyInstance) {
    this.#app = app
  }

  add (method: 'GET' | 'POST', path: string, handler: Handler, options: { open?: boolean } = {}): void {
    this.#app.route({ method, url: path, handler: async (request, reply) => handler(request, reply) })
    const methods = this.#methods.get(path) ?? []
    methods.push(...(method === 'GET' ? ['GET', 'HEAD'] : [method]))
    this.#methods.set(path, methods)
    if (options.open === true) this.#open.add(path)
  }

  /** The methods `path` answers, or undefined for no such endpoint. */
  allowed (path: string): readonly string[] | undefined { return this.#methods.get(path) }

  /**
   * Health probes stay open so orchestrators need no credentials: to GET and HEAD only. Any other
   * method needs the token, so that without it no request is read further than its head.
   */
  isOpen (method: string, path: string): boolean { return (method === 'GET' || method === 'HEAD') && this.#open.has(path) }
}

/** What every admin answer says: never cached (a /config read, a reload's result), never sniffed as anything but its type. */
export const ADMIN_HEADERS: Readonly<Record<string, string>> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }

/** An absolute-form target's scheme and authority (RFC 9112 3.2.2), which Fastify's router skips too. */
const ORIGIN = /^https?:\/\/[^/?]*/i

/** The path of a request target (origin- or absolute-form, whose path is `/` if it has none), without its query. */
export const pathOf = (url: string): string => {
  const origin = ORIGIN.exec(url)
  const target = origin === null ? url : '/' + url.slice(origin[0].length).replace(/^\//, '')
  const q = target.indexOf('?')
  return q === -1 ? target : target.slice(0, q)
}
