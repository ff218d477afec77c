import type { FastifyInstance } from 'fastify'

/** A 4xx the admin API answers with this message (admin-server.ts, its error handler). */
const clientError = (statusCode: number, message: string): Error => Object.assign(new Error(message), { statusCode })

/**
 * How deep objects and arrays may nest in a body: far more than any endpoint takes, and well within
 * what can be serialized again (a plugin admin call sent to the workers overflowed the stack).
 */
export const MAX_JSON_DEPTH = 64

const PROTOTYPE_KEY = 'the JSON body has a "__proto__" or "constructor.prototype" key, refused: it could change the prototype of the objects it is merged into'

/**
 * Why parsed JSON is refused, or undefined: nested past MAX_JSON_DEPTH, or a key Fastify's own JSON
 * parser refuses (secure-json-parse's rule): `__proto__`, or `constructor` holding `prototype`.
 * A loop, not recursion: any depth is walked.
 */
function refusal (value: unknown): string | undefined {
  const pending: Array<[unknown, number]> = [[value, 1]]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [v, depth] = next
    if (v === null || typeof v !== 'object') continue
    if (depth > MAX_JSON_DEPTH) return `the JSON body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep, refused`
    if (Object.hasOwn(v, '__proto__')) return PROTOTYPE_KEY
    const ctor = (v as { constructor?: unknown }).constructor
    if (Object.hasOwn(v, 'constructor') && ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return PROTOTYPE_KEY
    for (const child of Object.values(v)) pending.push([child, depth + 1])
  }
  return undefined
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
    const refused = refusal(value)
    if (refused !== undefined) done(clientError(400, refused))
    else done(null, value)
  })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    if (body.length === 0) done(null, undefined)
    else done(clientError(415, 'a request body must be application/json'))
  })
}
