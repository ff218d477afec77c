import type { FastifyInstance } from 'fastify'

/** A 4xx the admin API answers with this message (admin-server.ts, its error handler). */
const clientError = (statusCode: number, message: string): Error => Object.assign(new Error(message), { statusCode })

/** Thrown by noPrototypeKeys, to tell its refusal from a syntax error. */
const PROTOTYPE_KEY = Symbol('prototype key')

/** Refuses what Fastify's own JSON parser refuses (secure-json-parse's rule), to say so. */
function noPrototypeKeys (key: string, value: unknown): unknown {
  if (key === '__proto__' || (key === 'constructor' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype'))) throw PROTOTYPE_KEY
  return value
}

/**
 * Request bodies: JSON, or none. An empty body is none, whatever its Content-Type (curl's
 * `-H 'Content-Type: application/json'` or `-d ''` on POST /config/reload, which takes none).
 * A non-empty body of another type is 415 (the browser guard refuses it first on POST, PUT, PATCH, DELETE).
 */
export function adminBodies (app: FastifyInstance): void {
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body.length === 0) { done(null, undefined); return }
    let value: unknown
    try {
      value = JSON.parse(body as string, noPrototypeKeys)
    } catch (err) {
      done(err === PROTOTYPE_KEY
        ? clientError(400, 'the JSON body has a "__proto__" or "constructor.prototype" key, refused: it could change the prototype of the objects it is merged into')
        : clientError(400, 'the body is not valid JSON'))
      return
    }
    done(null, value)
  })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    if (body.length === 0) done(null, undefined)
    else done(clientError(415, 'a request body must be application/json'))
  })
}
