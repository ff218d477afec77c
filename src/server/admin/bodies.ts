import type { FastifyInstance } from 'fastify'

/** A 4xx the admin API answers with this message (admin-server.ts, its error handler). */
const clientError = (statusCode: number, message: string): Error => Object.assign(new Error(message), { statusCode })

/**
 * Whether parsed JSON holds a key Fastify's own JSON parser refuses (secure-json-parse's rule):
 * `__proto__`, or `constructor` holding `prototype`. A loop, not recursion: any depth is fine.
 */
function hasPrototypeKey (value: unknown): boolean {
  const pending = [value]
  for (let v = pending.pop(); pending.length > 0 || v !== undefined; v = pending.pop()) {
    if (v === null || typeof v !== 'object') continue
    if (Object.hasOwn(v, '__proto__')) return true
    const ctor = (v as { constructor?: unknown }).constructor
    if (Object.hasOwn(v, 'constructor') && ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return true
    for (const child of Object.values(v)) pending.push(child)
  }
  return false
}

/**
 * Request bodies: JSON, or none. An empty body (or only white space) is none, whatever its Content-Type (curl's
 * `-H 'Content-Type: application/json'` or `-d ''` on POST /config/reload, which takes none).
 * A non-empty body of another type is 415 (the browser guard refuses it first on POST, PUT, PATCH, DELETE).
 */
export function adminBodies (app: FastifyInstance): void {
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if ((body as string).trim() === '') { done(null, undefined); return }
    let value: unknown
    try {
      value = JSON.parse(body as string)
    } catch {
      done(clientError(400, 'the body is not valid JSON'))
      return
    }
    if (hasPrototypeKey(value)) done(clientError(400, 'the JSON body has a "__proto__" or "constructor.prototype" key, refused: it could change the prototype of the objects it is merged into'))
    else done(null, value)
  })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    if (body.length === 0) done(null, undefined)
    else done(clientError(415, 'a request body must be application/json'))
  })
}
