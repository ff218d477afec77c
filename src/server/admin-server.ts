import type { IncomingMessage, ServerResponse } from 'node:http'
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import { bearerMatches } from './admin/auth.ts'
import { adminBodies } from './admin/bodies.ts'
import { browserRefusal, firstByteJudged, hasBody, type Refusal } from './admin/browser-guard.ts'
import { adminClientError, adminConnect } from './admin/client-error.ts'
import { endAfterAnswer } from './admin/closing.ts'
import { configEndpoints } from './admin/config.ts'
import { ADMIN_HEADERS, Endpoints, pathOf } from './admin/endpoints.ts'
import { framingRefusal } from './admin/framing.ts'
import { healthEndpoints } from './admin/health.ts'
import { inventoryEndpoints } from './admin/inventory.ts'
import { metricsEndpoints } from './admin/metrics.ts'
import { pluginEndpoints } from './admin/plugins.ts'
import { PendingAnswers } from './admin/pipelining.ts'
import { storeEndpoints } from './admin/stores.ts'
import type { AdminCall, AdminState } from './admin/state.ts'
import { LogLimiter } from '../logging/log-limiter.ts'
import { loggedTarget } from '../logging/logger.ts'

export type { AdminState } from './admin/state.ts'

const fail = (reply: FastifyReply, status: number, error: string, message: string) => reply.code(status).send({ error, message })

/** Fastify's own 4xx answers, by a code of ours (its message says the rest). */
const CLIENT_ERRORS: Readonly<Record<number, string>> = { 413: 'body_too_large', 415: 'unsupported_media_type' }

/** The largest request body taken (Fastify's default: no endpoint takes more than a small JSON). */
const BODY_LIMIT = 1_048_576

/** Fastify's "Request body is too large", in the admin API's words. */
const TOO_LARGE = `the request body is larger than the admin API takes (${BODY_LIMIT} bytes)`

/**
 * Slow-client limits: no client (a slowloris, a body trickled or never sent, answers left unread)
 * may hold a connection long, nor many of them: the admin listener shares the process's file
 * descriptors with the gateway. Its clients send small requests at once and read the answers; a
 * reload, however long, is bounded by none of these. `pipelined` answers pending per connection,
 * `pending` over the listener, the client of each taking some of it every `sendMs` (pipelining.ts;
 * PORTCULLIS_ADMIN_SEND_MS, read as the module loads, shortens it for tests).
 */
export const ADMIN_LIMITS = {
  headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, maxConnections: 256, pipelined: 16, pending: 256,
  sendMs: Number(process.env.PORTCULLIS_ADMIN_SEND_MS ?? 10_000)
} as const

/** An answer sent while the request's body is still coming (a refusal, an open probe ignoring it). */
const bodyPending = (req: FastifyRequest): boolean => hasBody(req) && !req.raw.complete

const NO_HOST: Refusal = { status: GatewayError.BAD_HOST.status, error: GatewayError.BAD_HOST.code, message: GatewayError.BAD_HOST.message }
const EXPECTATION: Refusal = { status: GatewayError.EXPECTATION_FAILED.status, error: GatewayError.EXPECTATION_FAILED.code, message: GatewayError.EXPECTATION_FAILED.message }
const UNAUTHORIZED: Refusal = { status: 401, error: 'unauthorized', message: 'this admin endpoint needs "Authorization: Bearer <admin.token>"' }
const PIPELINED: Refusal = {
  status: 429, error: 'too_many_requests', close: true,
  message: `more than ${ADMIN_LIMITS.pipelined} requests on this connection wait for their answers to be read: this one and those after it are not run; the connection closes`
}
const BUSY: Refusal = {
  status: 503, error: 'admin_busy', close: true,
  message: `more than ${ADMIN_LIMITS.pending} admin answers wait to be made or read: this request and those after it on this connection are not run; the connection closes`
}
const readOnly = (method: string): Refusal => ({ status: 403, error: 'read_only_token', message: `admin.readToken may only read (GET, HEAD): ${method} needs admin.token` })

/** An error answer's `error` code (every admin error answer is JSON `{ error, message }`; a plugin's may be anything). */
function errorCode (payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined
  try {
    const error = (JSON.parse(payload) as { error?: unknown } | null)?.error
    return typeof error === 'string' ? error : undefined
  } catch {
    return undefined
  }
}

const REFUSED = 'admin request refused'
const UNREAD = 'admin connection reset: its client left an answer unread'
const CALLED = 'admin call'
const RELOAD = '/config/reload'
/** Plugin endpoints' one route: the endpoint is the path. */
const PLUGINS = '/plugins/*'

/**
 * The admin listener (loopback by default): probes, the active config, reload, route and upstream
 * tables, metrics. Every answer is JSON (metrics aside), errors included; never a stack trace.
 * With admin.token set, everything but the probes needs `Authorization: Bearer <token>`;
 * admin.readToken, if set, opens GET and HEAD alone.
 * Nothing a web page can send is answered (browser-guard.ts).
 */
export function createAdminServer (state: AdminState): FastifyInstance {
  const failed = (err: { statusCode?: number, code?: string, message: string }, reply: FastifyReply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (status === 500) state.log.error({ err }, 'admin endpoint failed')
    return fail(reply, status, status === 500 ? 'internal_error' : CLIENT_ERRORS[status] ?? 'bad_request',
      status === 500 ? 'the admin endpoint failed; see the gateway log' : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? TOO_LARGE : err.message)
  }
  // A client can leave answers unread at will: the line is limited per client address.
  const resets = new LogLimiter(state.log)
  const pending = new PendingAnswers({
    connection: ADMIN_LIMITS.pipelined,
    listener: ADMIN_LIMITS.pending,
    sendMs: ADMIN_LIMITS.sendMs,
    onReset: socket => {
      const fields = { clientIp: socket.remoteAddress, sendMs: ADMIN_LIMITS.sendMs }
      if (resets.allow(`${fields.clientIp}`, 'warn', fields, UNREAD)) state.log.warn(fields, UNREAD)
    }
  })
  /** The refusal for a request past a bound on answers pending (pipelining.ts), or undefined. */
  const pastBound = (req: IncomingMessage): Refusal | undefined => {
    const past = pending.past(req)
    return past === 'connection' ? PIPELINED : past === 'listener' ? BUSY : undefined
  }
  const app = fastify({
    logger: false,
    return503OnClosing: false,
    bodyLimit: BODY_LIMIT,
    // Closed last, once the gateway has drained: nothing on it (a scrape, a connection that sent nothing) may hold the stop.
    forceCloseConnections: true,
    // Fastify's own answers (a malformed URL such as /%zz; a request the HTTP parser rejects) in
    // ours. Its requests skip onRequest: one past a bound on answers pending is refused here.
    frameworkErrors: (err, req, reply) => {
      const r = pastBound(req.raw)
      if (r === undefined) return failed(err, reply)
      clientIps.set(req, req.ip)
      return refuse(req, reply, r)
    },
    clientErrorHandler: adminClientError,
    requestTimeout: ADMIN_LIMITS.requestMs,
    keepAliveTimeout: ADMIN_LIMITS.keepAliveMs,
    // A missing Host is ours to answer (JSON, below), not Node's (a bare 400). Timeouts checked every
    // second (Node's default, 30 s, would let a 10 s one run to 40 s).
    http: { headersTimeout: ADMIN_LIMITS.headersMs, requestTimeout: ADMIN_LIMITS.requestMs, connectionsCheckingInterval: 1_000, requireHostHeader: false }
  })
  app.server.on('connect', adminConnect)
  // An Expect other than 100-continue, which Node would answer itself (a bare 417): refused as ours, below.
  const unmet = new WeakSet<IncomingMessage>()
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    unmet.add(req)
    app.server.emit('request', req, res)
  })
  // Expect: 100-continue, which Node would answer before any check: no 100 for a Content-Length past
  // the limit, without admin.token, nor past a bound on answers pending, so that the client uploads
  // nothing before the 413, 401, 429 or 503.
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const token = state.runtime.loaded.config.admin?.token
    const authorized = token === undefined || bearerMatches(req.headers.authorization, token)
    if (authorized && !(Number(req.headers['content-length']) > BODY_LIMIT) && track(req, res) === undefined) res.writeContinue()
    app.server.emit('request', req, res)
  })
  app.server.maxConnections = ADMIN_LIMITS.maxConnections
  const unrun = new WeakSet<IncomingMessage>()
  // Before Fastify sees the request: on every answer, errors (its own for a malformed URL too) and
  // plugin endpoints' included. Every request counted, those Fastify answers itself too.
  app.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    // Sent after the answer that ended its connection (read only to see the client's close,
    // closing.ts): the connection is cut, the request not run.
    if (req.socket.writableEnded) {
      unrun.add(req)
      req.socket.destroy()
      return
    }
    for (const [name, value] of Object.entries(ADMIN_HEADERS)) res.setHeader(name, value)
    track(req, res)
  })
  // A client can refuse the operators' connections at will: the line is limited, not one per connection.
  const drops = new LogLimiter(state.log)
  app.server.on('drop', () => {
    const fields = { maxConnections: ADMIN_LIMITS.maxConnections }
    const msg = 'admin connection limit reached: new admin connections are closed'
    if (drops.allow('drop', 'warn', fields, msg)) state.log.warn(fields, msg)
  })
  // Refusals too: a client provokes them at will. Limited per code and client address.
  const refusals = new LogLimiter(state.log)
  app.server.once('close', () => { drops.flush(); refusals.flush(); resets.flush() })
  adminBodies(app)
  const api = new Endpoints(app)
  // A probe's answer is a few bytes: not held to the listener's bound, so that a full listener fails no probe.
  const track = (req: IncomingMessage, res: ServerResponse) => pending.track(req, res, api.isOpen(req.method as string, pathOf(req.url as string)))
  const notFound = (req: FastifyRequest, reply: FastifyReply) => fail(reply, 404, 'not_found', `no admin endpoint ${pathOf(req.url)}`)

  /** Why the request is refused before any endpoint sees it, or undefined. */
  const refusal = (req: FastifyRequest): Refusal | undefined => {
    const framing = framingRefusal(req.raw, hasBody(req))
    if (framing !== undefined) return framing
    if (unmet.has(req.raw)) return EXPECTATION
    // RFC 9112 3.2: HTTP/1.1 needs a Host (HTTP/1.0 may omit it).
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') return NO_HOST
    // Read per request: the tokens are part of the config and change with it on reload.
    const admin = state.runtime.loaded.config.admin
    const token = admin?.token
    const browser = browserRefusal(req, token !== undefined)
    if (browser !== undefined) return browser
    if (token === undefined || api.isOpen(req.method, pathOf(req.url)) || bearerMatches(req.headers.authorization, token)) return undefined
    if (admin?.readToken !== undefined && bearerMatches(req.headers.authorization, admin.readToken)) {
      return req.method === 'GET' || req.method === 'HEAD' ? undefined : readOnly(req.method)
    }
    return UNAUTHORIZED
  }
  // The client's address, read as its request comes: once it hangs up, its socket has none, and
  // a call it made still runs.
  const clientIps = new WeakMap<FastifyRequest, string | undefined>()
  // Who was refused, and who changed something: the audit trail (never the token; the target as
  // the gateway's rejected lines log it: no userinfo, query, fragment nor path parameter).
  const logRefused = (req: FastifyRequest, r: Refusal): void => {
    const clientIp = clientIps.get(req)
    // The summary of those limited counts lines of any method and path: it names neither.
    const key = { clientIp, status: r.status, error: r.error }
    if (refusals.allow(`${r.error} ${clientIp}`, 'warn', key, REFUSED)) state.log.warn({ clientIp, method: req.method, path: loggedTarget(req.url), status: r.status, error: r.error }, REFUSED)
  }
  const refuse = (req: FastifyRequest, reply: FastifyReply, r: Refusal) => {
    logRefused(req, r)
    if (r.status === 401) void reply.header('www-authenticate', 'Bearer realm="portcullis-admin"')
    if (r.close === true) void reply.header('connection', 'close')
    return fail(reply, r.status, r.error, r.message)
  }
  app.addHook('onRequest', async (req, reply) => {
    if (unrun.has(req.raw)) return reply.hijack()
    clientIps.set(req, req.ip)
    // A client pipelining past a bound gets the answers before it, then this one, then the end of
    // the connection; what it sent after is answered the same way and never sent (pipelining.ts).
    const r = pastBound(req.raw) ?? refusal(req)
    if (r !== undefined) return refuse(req, reply, r)
  })
  // A body not said to be JSON, chunked: refused at its first byte (browser-guard.ts), logged as refused at its head.
  app.addHook('preParsing', async (req, _reply, payload) => firstByteJudged(req, payload, r => { logRefused(req, r) }))
  // A call that may change something (not GET nor HEAD) reaching its endpoint (not refused, its body
  // read). Numbered as its line is written, so that every number has one: a plugin endpoint is only
  // known to be none (404, 405) once asked. What a plugin handler outliving its answer logs later
  // reads the same object, and so names the same call.
  const handled = new WeakMap<FastifyRequest, { callId?: number, clientIp?: string }>()
  let calls = 0
  app.addHook('preHandler', async (req, reply) => {
    // One spelling per endpoint, the one its audit line names: a percent-encoded octet spells none
    // (Fastify would decode /%63onfig/reload to /config/reload; a plugin's path is matched as sent).
    if (req.routeOptions.url !== undefined && pathOf(req.url).includes('%')) return notFound(req, reply)
    if (req.method !== 'GET' && req.method !== 'HEAD') handled.set(req, { clientIp: clientIps.get(req) })
  })
  const callOf = (req: FastifyRequest): AdminCall => handled.get(req) ?? { clientIp: clientIps.get(req) }
  // No such endpoint (404, 405): nothing ran.
  const unrouted = (req: FastifyRequest): void => { handled.delete(req) }
  // Every such call, once, when its answer is made, whatever its outcome: a 500 may follow a change
  // made, a 504 a handler still running. Not once sent (onResponse): a client that hung up is never sent one.
  app.addHook('onSend', async (req, reply, payload) => {
    const call = handled.get(req)
    if (call === undefined) return payload
    handled.delete(req)
    call.callId = ++calls
    const error = reply.statusCode >= 400 ? errorCode(payload) : undefined
    const route = req.routeOptions.url
    const endpoint = route === PLUGINS ? pathOf(req.url) : route
    state.log.info({ callId: call.callId, clientIp: call.clientIp, method: req.method, path: loggedTarget(req.url), endpoint, status: reply.statusCode,
      ...(error === undefined ? {} : { error }), ...(route === RELOAD ? { trigger: 'admin' } : {}) }, CALLED)
    return payload
  })
  // Answered before its body is in (a refusal, 413 by Content-Length): the connection ends after
  // the answer, lingering so that a client still sending reads it (closing.ts).
  app.addHook('onSend', async (req, reply, payload) => {
    if (!bodyPending(req)) return payload
    void reply.header('connection', 'close')
    endAfterAnswer(req.raw.socket)
    return payload
  })

  healthEndpoints(api, state)
  const reloadsAnswered = configEndpoints(api, state)
  // Before the stop cuts the connections (forceCloseConnections): a reload it abandoned is answered 503.
  app.addHook('preClose', async () => { await reloadsAnswered() })
  inventoryEndpoints(api, state)
  metricsEndpoints(api, state)
  storeEndpoints(api, state)
  const pluginEndpoint = pluginEndpoints(app, state, fail, { callOf, unrouted })

  app.setNotFoundHandler((req, reply) => {
    const path = pathOf(req.url)
    if (path.startsWith('/plugins/')) return pluginEndpoint(req, reply)
    unrouted(req)
    const allowed = api.allowed(path)
    if (allowed === undefined) return notFound(req, reply)
    void reply.header('allow', allowed.join(', '))
    return fail(reply, 405, 'method_not_allowed', `${req.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`)
  })
  app.setErrorHandler((err: { statusCode?: number, code?: string, message: string }, _req, reply) => failed(err, reply))
  return app
}
