import fastify, { type FastifyInstance } from 'fastify'
import { METHODS, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { SecureContext, Server as TlsServer } from 'node:tls'
import type { Runtime } from '../runtime/runtime.ts'
import { toMs } from '../config/duration.ts'
import type { GatewayConfig } from '../config/schema.ts'
import { answerOnSocket, errorBody, GatewayError, parserError, sendError } from '../errors.ts'
import { requestId } from '../proxy/request-id.ts'
import { clientTimeouts } from './client-timeouts.ts'
import { stapleOcsp } from './server-tls.ts'

/** Out-of-connections warnings (limit reached, no file descriptors) are logged at most this often. */
const WARN_EVERY_MS = 10_000

/**
 * The public listener. Fastify hosts it; every request is handed, unparsed and unbuffered, to the
 * current runtime, which can be swapped while requests are in flight.
 */
export class GatewayServer {
  readonly app: FastifyInstance
  #runtime: Runtime
  readonly #upgraded = new Set<Duplex>()
  /** Runtimes swapped out and still finishing their requests, with the promise of their end. */
  readonly #retiring = new Map<Runtime, Promise<void>>()
  #closing = false
  #warnedAt = -Infinity

  constructor (runtime: Runtime, server: GatewayConfig['server']) {
    this.#runtime = runtime
    const headersMs = clientTimeouts(server).headers
    const http = { headersTimeout: headersMs, connectionsCheckingInterval: Math.min(1_000, Math.max(50, headersMs / 4)) }
    const tls = runtime.loaded.serverTls
    this.app = fastify({
      // With TLS, a client's SNI picks its certificate from the runtime current at its handshake (see swap).
      ...(tls === undefined ? {} : { https: { ...tls.options, ...http, SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, this.#runtime.loaded.serverTls?.select(name)) } }),
      logger: false,
      keepAliveTimeout: keepAliveMs(server),
      requestTimeout: 0,
      // Node checks headersTimeout every connectionsCheckingInterval (30s by default: a 60s timeout fired at up to 90s).
      http,
      // Our own 503 (JSON with the request id) for requests that arrive on open connections while closing.
      return503OnClosing: false,
      forceCloseConnections: 'idle',
      routerOptions: { maxParamLength: 65_535 },
      frameworkErrors: (err, request, reply) => {
        reply.hijack()
        const error = err.code === 'FST_ERR_BAD_URL' ? GatewayError.BAD_PATH : GatewayError.BAD_REQUEST
        const id = requestId(request.headers['x-request-id'])
        sendError(reply.raw, error, id)
        this.#runtime.logRejected(error, id, request.raw.socket.remoteAddress, request.method, request.url)
      },
      // Requests Node's parser refuses (bad request line, bad header, both Content-Length and
      // Transfer-Encoding…) get the same JSON errors and access-log lines as every other one.
      clientErrorHandler: (err: Error & { code?: string }, socket) => {
        const error = parserError(err)
        if (error === GatewayError.HEADERS_TIMEOUT) this.#runtime.timedOut('client_headers')
        const id = requestId(undefined)
        if (answerOnSocket(socket, err, error.status, errorBody(error, id), `x-request-id: ${id}\r\n`)) this.#runtime.logRejected(error, id, socket.remoteAddress)
      }
    })
    // Every method Node parses, not only Fastify's (PURGE, PROPFIND, LINK…): a route may name any.
    // All declared bodyless to Fastify, so that it neither judges content types nor reads bodies:
    // they stream to the upstream untouched. CONNECT asks for a tunnel, which a gateway does not open.
    for (const method of METHODS) if (method !== 'CONNECT') this.app.addHttpMethod(method, { hasBody: false, overrideExisting: true })
    this.app.route({
      method: this.app.supportedMethods,
      url: '*',
      handler: (request, reply) => {
        reply.hijack()
        if (this.#closing) sendError(reply.raw, GatewayError.SHUTTING_DOWN, requestId(request.headers['x-request-id']))
        else this.#runtime.handle(request.raw, reply.raw)
      }
    })
    if (server.maxConnections !== undefined) this.app.server.maxConnections = server.maxConnections
    // Headers are bounded by size (Node's maxHeaderSize: 431), not count: past Node's 2,000 it would drop them silently.
    this.app.server.maxHeadersCount = 0
    if (tls !== undefined) stapleOcsp(this.app.server, () => this.#runtime.loaded.serverTls)
    this.app.server.on('drop', () => this.#warn({ maxConnections: server.maxConnections }, 'connection limit reached: new connections are closed (server.maxConnections)'))
    // Accept failing (EMFILE: out of file descriptors) is not fatal: Node retries on the next connection.
    this.app.server.on('error', (err: Error & { code?: string, syscall?: string }) => {
      if (err.syscall === 'accept') this.#warn({ err }, 'cannot accept a connection (out of file descriptors?): it is dropped')
      else if (this.app.server.listening) this.#runtime.log.error({ err }, 'gateway listener error')
    })
    // CONNECT asks for a tunnel, which a gateway does not open: refused like any other request, not just dropped.
    this.app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      const error = GatewayError.CONNECT_REFUSED
      const id = requestId(req.headers['x-request-id'])
      if (answerOnSocket(socket, {}, error.status, errorBody(error, id), `x-request-id: ${id}\r\n`)) this.#runtime.logRejected(error, id, req.socket.remoteAddress, req.method, req.url)
    })
    this.app.server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      this.#upgraded.add(socket)
      socket.once('close', () => this.#upgraded.delete(socket))
      this.#runtime.handleUpgrade(req, socket, head)
    })
  }

  get runtime (): Runtime { return this.#runtime }

  /**
   * Puts `next` in service at once: every new request, also on open keep-alive connections, uses
   * it. The previous runtime retires in the background; the promise settles once it has finished
   * its in-flight requests (and WebSockets) and released its pools.
   */
  swap (next: Runtime): Promise<void> {
    const previous = this.#runtime
    this.#runtime = next
    this.app.server.keepAliveTimeout = keepAliveMs(next.loaded.config.server)
    this.app.server.headersTimeout = clientTimeouts(next.loaded.config.server).headers
    this.app.server.maxConnections = next.loaded.config.server.maxConnections ?? Infinity
    // New handshakes get the new certificates and client-auth settings; open connections keep theirs.
    if (next.loaded.serverTls !== undefined) (this.app.server as unknown as TlsServer).setSecureContext(next.loaded.serverTls.options)
    const retired: Promise<void> = previous.dispose().finally(() => this.#retiring.delete(previous))
    this.#retiring.set(previous, retired)
    return retired
  }

  #warn (fields: object, msg: string): void {
    const now = performance.now()
    if (now - this.#warnedAt < WARN_EVERY_MS) return
    this.#warnedAt = now
    this.#runtime.log.warn(fields, msg)
  }

  /** http or https. */
  get scheme (): string { return this.#runtime.loaded.serverTls === undefined ? 'http' : 'https' }

  async listen (host: string, port: number): Promise<AddressInfo> {
    await this.app.listen({ host, port })
    return this.app.server.address() as AddressInfo
  }

  /**
   * Stops accepting, lets in-flight requests finish, and after `deadlineMs` cuts what is left
   * (including open WebSockets). Resolves when every connection is gone.
   */
  async close (deadlineMs: number): Promise<void> {
    this.#closing = true
    // Past the deadline nothing may hold the stop: client connections, WebSockets and upstream pools are cut.
    const timer = setTimeout(() => {
      this.app.server.closeAllConnections()
      for (const s of this.#upgraded) s.destroy()
      for (const r of [this.#runtime, ...this.#retiring.keys()]) void r.destroy()
    }, deadlineMs)
    // A keep-alive connection whose response ends during the drain would otherwise stay open
    // (server.close() only closes the connections idle when it is called) until the deadline.
    const sweep = setInterval(() => this.app.server.closeIdleConnections(), 100)
    // Open WebSockets hold the close until they end or the deadline cuts them.
    await this.app.close()
    clearInterval(sweep)
    await Promise.all([this.#runtime.dispose(), ...this.#retiring.values()])
    clearTimeout(timer)
  }
}

const keepAliveMs = (server: GatewayConfig['server']) => server.keepAliveTimeout === undefined ? 72_000 : toMs(server.keepAliveTimeout)
