import fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import cluster from 'node:cluster'
import { METHODS, ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, type Server as HttpServer } from 'node:http'
import type { Http2Server, Http2Session } from 'node:http2'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { SecureContext, Server as TlsServer, TlsOptions } from 'node:tls'
import type { Runtime } from '../runtime/runtime.ts'
import type { UpstreamSnapshot } from '../upstreams/upstream.ts'
import { toMs } from '../config/duration.ts'
import type { GatewayConfig } from '../config/schema.ts'
import { answerOnSocket, errorBody, GatewayError, parserError, sendError, type GatewayErrorKind } from '../errors.ts'
import { requestId } from '../proxy/request-id.ts'
import { logThrown } from '../plugins/thrown.ts'
import { clientTimeouts } from './client-timeouts.ts'
import { DispositionFirstResponse } from './disposition-first.ts'
import { protocolOf } from '../logging/access-log.ts'
import { LogLimiter } from '../logging/log-limiter.ts'
import { holdContinue } from '../proxy/expect-continue.ts'
import { Exchange } from '../proxy/exchange.ts'
import { readNoMore } from '../proxy/unread-body.ts'
import { createH2cServer, Http2Connections, http2Limits, http2ServerOptions, isHttp2, listenH2c, type Http2Cut } from './http2.ts'
import { http10AsHttp1, selectAlpn, stapleOcsp, type ServerTls } from './server-tls.ts'
import { bodyUnderWay, UnusedConnections } from './unused-connections.ts'

/**
 * TCP keepalive on client connections (undici sets it upstream): a WebSocket tunnel or HTTP/2
 * session whose client vanished without a FIN or RST, its upstream silent, was held for ever.
 */
const CLIENT_KEEPALIVE = { keepAlive: true, keepAliveInitialDelay: 60_000 }

const ignore = (): void => {}

type Handle = (req: IncomingMessage, res: ServerResponse) => void

const WAITING = Symbol('waiting')
const TOO_MANY = Symbol('too many')
const REFUSED = Symbol('refused')
const DISCARDED = Symbol('discarded')

/**
 * What Node's HTTP/1 server hangs on a connection's socket: its parser, and the response being
 * written (the earliest of those pipelined); ours: how many requests wait their turn, the one that
 * waited past MAX_WAITING (see waitTurn), and the parser's error for a request it refused behind
 * them (see #refuseInTurn).
 */
type Http1Socket = Duplex & { parser?: { pause (): void } | null, _httpMessage?: ServerResponse | null, [WAITING]?: number, [TOO_MANY]?: IncomingMessage, [REFUSED]?: Error, [DISCARDED]?: number }

/**
 * The public listener. Fastify hosts it; every request is handed, unparsed and unbuffered, to the
 * current runtime, which can be swapped while requests are in flight.
 */
export class GatewayServer {
  readonly app: FastifyInstance
  #runtime: Runtime
  /** Sockets Node handed over (upgrades, HTTP/1 CONNECT): no longer its connections, cut here at the shutdown deadline. */
  readonly #handedOver = new Set<Duplex>()
  readonly #unused = new UnusedConnections()
  /** Runtimes swapped out and still finishing their requests, with the promise of their end. */
  readonly #retiring = new Map<Runtime, Promise<void>>()
  #closing = false
  /** Warnings a client can provoke at will (limit reached, no file descriptors, HTTP/2 abuse): see #warn. */
  readonly #warnings: LogLimiter
  /** With server.http2: the TLS listener's connections (HTTP/2 sessions and HTTP/1.1), and the h2c listener's. */
  readonly #h2: Http2Connections | undefined
  readonly #h2c: { server: Http2Server, connections: Http2Connections } | undefined
  /** server.maxConnections on each listener (the main one, then h2c's). */
  readonly #limits: ConnectionLimit[] = []

  constructor (runtime: Runtime, server: GatewayConfig['server']) {
    this.#runtime = runtime
    this.#warnings = new LogLimiter(runtime.log)
    const headersMs = clientTimeouts(server).headers
    const http = httpOptions(server)
    const tls = runtime.loaded.serverTls
    const h2 = http2Limits(server)
    const h2tls = h2 !== undefined && tls !== undefined
    const Response = drainingResponse(() => this.#closing)
    this.app = fastify({
      // With TLS, a client's SNI picks its certificate from the runtime current at its handshake (see swap).
      // The TLS handshake counts in the time to send the headers (Node's own default is 120s; 0 is that default).
      ...(tls === undefined ? {} : { https: { ...tls.options, ...http, ...CLIENT_KEEPALIVE, ServerResponse: Response, handshakeTimeout: headersMs, ALPNCallback: selectAlpn(h2tls), ...(h2tls ? { allowHTTP1: true, Http1ServerResponse: Response, ...http2ServerOptions(h2) } : {}), SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, this.#runtime.loaded.serverTls?.select(name)) } }),
      // HTTP/2 over TLS (ALPN h2), HTTP/1.1 on the same port; idle sessions are closed by Http2Connections.
      ...(h2tls ? { http2: true, http2SessionTimeout: 0 } : {}),
      logger: false,
      keepAliveTimeout: keepAliveMs(server),
      http: { ...http, ...CLIENT_KEEPALIVE, ServerResponse: Response },
      // Our own 503 (JSON with the request id) for requests that arrive on open connections while closing.
      return503OnClosing: false,
      forceCloseConnections: 'idle',
      // Methods Fastify's router does not know (HTTP/2 takes any token: `FOO`, lowercase `get`) are
      // the runtime's too: routed by method, logged and counted (OTHER), not Fastify's bare 404.
      routerOptions: { maxParamLength: 65_535, defaultRoute: (req: IncomingMessage, res: ServerResponse) => this.#serve(req, res) },
      frameworkErrors: (err, request, reply) => {
        reply.hijack()
        const error = err.code === 'FST_ERR_BAD_URL' ? GatewayError.BAD_PATH : GatewayError.BAD_REQUEST
        this.#serve(request.raw, reply.raw, (req, res) => this.#refuse(req, res, error))
      },
      // Requests Node's parser refuses (bad request line, bad header, both Content-Length and
      // Transfer-Encoding…) get the same JSON errors and access-log lines as every other one.
      clientErrorHandler: (err: Error & { code?: string }, socket) => {
        // A request under way on this connection (the client left mid-body) is its exchange's to log; an
        // answer here would go out ahead of its own. So is the body of one answered before it was read
        // (an early 401 or 413, the rest left for Node to discard on a kept connection) that the client
        // then cut short: no new request. What the parser refuses behind responses under way (a head, or
        // the body of a request waiting its turn) is answered after them (#refuseInTurn).
        // A body Node cannot parse (a malformed chunk) is its exchange's to answer (400) if still unanswered.
        // Bytes after a request that said it was the last are ignored: its response is still owed.
        // So are those the paused parser refuses past a request that waited one too many (waitTurn).
        const s = socket as Http1Socket
        if (s[TOO_MANY] !== undefined && (unparsable(err) || err.code === 'ERR_HTTP_REQUEST_TIMEOUT')) { discard(s, (err as { rawPacket?: unknown }).rawPacket); return }
        // Past a request the parser refused, it is still answered in its turn; what comes after (the
        // parser, in error, refuses each chunk) is read and thrown away, so that a client that leaves is seen.
        if (s[REFUSED] !== undefined) { discard(s, (err as { rawPacket?: unknown }).rawPacket); return }
        const incoming = bodyUnderWay(socket)
        const answering = s._httpMessage
        if (answering != null || incoming !== undefined) {
          if (err.code === 'HPE_CLOSED_CONNECTION') readNoMore(socket as Socket)
          else if (answering != null && answering.req !== incoming && unparsable(err)) this.#refuseInTurn(s, err, incoming)
          // A pipelined head that took too long: answered (408) after them too; its rest is not read (it would become a request).
          else if (answering != null && incoming === undefined && err.code === 'ERR_HTTP_REQUEST_TIMEOUT') { readNoMore(socket as Socket); this.#refuseInTurn(s, err, incoming) }
          else if (incoming === undefined || !unparsable(err) || !Exchange.bodyUnreadable(incoming, err)) socket.destroy()
          return
        }
        // A TLS handshake that failed or took too long: no HTTP can be spoken on it, and no request was made.
        if (isHandshakeError(err)) { this.#handshakeFailed(err, socket); return }
        this.#refuseUnparsed(err, socket)
      }
    } as FastifyHttpOptions<HttpServer>) as unknown as FastifyInstance
    // Every method Node parses, not only Fastify's (PURGE, PROPFIND, LINK…): a route may name any.
    // All declared bodyless to Fastify, so that it neither judges content types nor reads bodies:
    // they stream to the upstream untouched. CONNECT asks for a tunnel, which a gateway does not open.
    for (const method of METHODS) if (method !== 'CONNECT') this.app.addHttpMethod(method, { hasBody: false, overrideExisting: true })
    this.app.route({
      method: this.app.supportedMethods,
      url: '*',
      handler: (request, reply) => {
        reply.hijack()
        this.#serve(request.raw, reply.raw)
      }
    })
    this.#unused.watch(this.app.server, tls !== undefined)
    this.#handleExpect(this.app.server)
    this.#limits.push(new ConnectionLimit(this.app.server, server.maxConnections, () => this.#dropped()))
    // Headers are bounded by size (Node's maxHeaderSize: 431), not count: past Node's 2,000 it would drop them silently.
    this.app.server.maxHeadersCount = 0
    if (tls !== undefined) stapleOcsp(this.app.server, () => this.#runtime.loaded.serverTls)
    if (tls !== undefined) this.#warnOutOfDate(tls)
    if (h2tls) http10AsHttp1(this.app.server)
    // Accept failing (EMFILE: out of file descriptors) is not fatal: Node retries on the next connection.
    this.app.server.on('error', (err: Error & { code?: string, syscall?: string }) => {
      if (err.syscall === 'accept') this.#warn('accept', {}, { err }, 'cannot accept a connection (out of file descriptors?): it is dropped')
      else if (this.app.server.listening) this.#runtime.log.error({ err }, 'gateway listener error')
    })
    // CONNECT asks for a tunnel, which a gateway does not open: refused like any other request, in its turn, not just dropped.
    this.app.server.on('connect', (req: IncomingMessage, socket: Duplex) => this.#refuseConnect(req, socket))
    if (h2 !== undefined) {
      const idle = keepAliveMs(server)
      const cut = (reason: Http2Cut, session: Http2Session) => this.#http2Cut(reason, session)
      const timedOut = (kind: string) => this.#runtime.timedOut(kind)
      if (h2tls) {
        this.#h2 = new Http2Connections(this.app.server, h2, idle, cut, timedOut)
        // HTTP/1.1 on an HTTP/2 listener takes its settings as properties, not options.
        Object.assign(this.app.server, { keepAliveTimeout: idle, ...http })
      }
      if (h2.h2c !== undefined) {
        const h2cServer = createH2cServer(h2, this.app.routing, CLIENT_KEEPALIVE)
        h2cServer.on('connect', (req: IncomingMessage, res: Duplex) => this.#refuseConnect(req, res))
        this.#handleExpect(h2cServer)
        // Its own limit, as large as the main listener's.
        this.#limits.push(new ConnectionLimit(h2cServer, server.maxConnections, () => this.#dropped()))
        this.#h2c = { server: h2cServer, connections: new Http2Connections(h2cServer, h2, idle, cut, timedOut) }
        this.#unused.watch(h2cServer, false)
      }
    }
    this.app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#handOver(socket)
      // It waits its turn as any request does, and counts as one: past the bound, refused (see waitTurn).
      if (oneTooMany(socket)) this.#refuseHandedOver(req, socket, GatewayError.PIPELINED_TOO_DEEP)
      else this.#upgrade(req, socket, head)
    })
  }

  /**
   * A socket Node hands over with an upgrade or CONNECT. Node no longer guards it: a client's reset
   * would be an uncaught error. The client gone is its exchange's to log (its response closes), as
   * on plain HTTP.
   */
  #handOver (socket: Duplex): void {
    socket.on('error', ignore)
    this.#handedOver.add(socket)
    socket.once('close', () => this.#handedOver.delete(socket))
  }

  /**
   * A request Node handed the socket over for (an upgrade, CONNECT), pipelined behind others: `then`
   * once their responses are done (each holds the socket in turn). Never if the connection closes or
   * is ending first (an earlier response closed it: `Connection: close`); if its client ended its
   * side while it waited (Node no longer watches it), the connection is destroyed: gone, as in
   * Runtime's closeOnEnd, unless tunnel bytes came with it (its end is then half a close of the tunnel).
   */
  #handedOverInTurn (socket: Duplex, head: Buffer, then: () => void): void {
    if (!socket.writable) return
    if (socket.readableEnded && head.length === 0) { socket.destroy(); return }
    const earlier = (socket as Http1Socket)._httpMessage
    if (earlier != null) { earlier.once('close', () => this.#handedOverInTurn(socket, head, then)); return }
    then()
  }

  /**
   * An upgrade request, in its turn; refused once the gateway is closing, as any request is (see
   * #handle): routed, it would reach the upstream only to be closed. A throw is a bug of the
   * gateway's: the connection is closed, never the process.
   */
  #upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#handedOverInTurn(socket, head, () => {
      if (this.#closing) { this.#refuseHandedOver(req, socket, GatewayError.SHUTTING_DOWN); return }
      try {
        this.#runtime.handleUpgrade(req, socket, head)
      } catch (err) {
        socket.destroy()
        logThrown(this.#runtime.log, 'error', 'upgrade failed in the gateway', err, { requestId: requestId(req.headers['x-request-id']) })
      }
    })
  }

  /**
   * A request Node handed the socket over for, refused (CONNECT, an upgrade one too many): answered
   * in its turn, after the answers before it (answered at once, it would go out ahead of them, and
   * its close lose them), then the connection closes. Meanwhile what comes (tunnel bytes, requests
   * after it) is read and thrown away, so that a client's reset is seen: the request under way
   * before it is aborted, its upstream try too.
   */
  #refuseHandedOver (req: IncomingMessage, socket: Duplex, error: GatewayErrorKind): void {
    let waiting = true
    socket.on('data', (chunk: Buffer) => { discard(socket as Http1Socket, chunk) })
    // Node no longer watches its end: a client that ends its side while it waits is gone.
    socket.once('end', () => { if (waiting) socket.destroy() })
    this.#handedOverInTurn(socket, NO_BYTES, () => {
      waiting = false
      const id = requestId(req.headers['x-request-id'])
      if (answerOnSocket(socket, {}, error.status, errorBody(error, id), `x-request-id: ${id}\r\n`)) this.#runtime.logRejected(error, id, this.#runtime.clientIp(req), req.method, req.url, protocolOf(req))
    })
  }

  /** Has `handle` answer the request, in its turn (see #inTurn). */
  #serve (req: IncomingMessage, res: ServerResponse, handle: Handle = this.#handle): void {
    const socket = req.socket as Http1Socket
    if (req.httpVersionMajor === 1 && (socket._httpMessage !== res || !socket.writable)) this.#inTurn(req, res, handle)
    else handle(req, res)
  }

  /**
   * An HTTP/1.1 request pipelined behind others (RFC 9112 9.3.2): Node parses it at once, its
   * response queued behind theirs. It is served once their responses are done, one at a time as
   * nginx does, or dropped (not routed, not logged) if the connection closes or is ending first (an
   * earlier response said `Connection: close`, maybe already sent as Node parsed the rest of the
   * same packet): it would run at the upstream, its answer never sent. Node gives the socket to the
   * next queued response ('socket') once the one before is finished, unless that one ends the
   * connection; served a turn later, after the earlier response's close (its access-log line).
   * One listener per waiting request, on its own response: none piles up on the earlier one.
   */
  #inTurn (req: IncomingMessage, res: ServerResponse, handle: Handle): void {
    const socket = req.socket as Http1Socket
    if (!socket.writable) return
    const current = socket._httpMessage
    if (current === null || current === undefined || current === res) {
      // Incomplete on a connection whose parser refused what came next: the body it refused (see #refuseInTurn).
      if (socket[REFUSED] !== undefined && !req.complete) this.#refuseClosing(req, res, GatewayError.BAD_REQUEST)
      else if (socket[TOO_MANY] === req) this.#refuseClosing(req, res, GatewayError.PIPELINED_TOO_DEEP)
      else handle(req, res)
      return
    }
    waitTurn(socket, req)
    res.once('socket', () => { socket[WAITING] = (socket[WAITING] ?? 1) - 1; process.nextTick(() => this.#inTurn(req, res, handle)) })
  }

  /**
   * A request Node's parser refused (its head, or the body of one waiting its turn), pipelined in the
   * same bytes as requests whose responses are still under way: answered once they are done, in
   * order, as when alone, and the connection then closed, as nginx does. Destroyed with the
   * connection, their answers would be lost, though the upstream ran them (a client would send a
   * POST again). The wait is theirs, bounded by their own timeouts. Meanwhile the socket is read on
   * only to see a client that leaves (Node then aborts every request on it): the parser, in error,
   * keeps nothing, and what comes is thrown away (see clientError above).
   */
  #refuseInTurn (socket: Http1Socket, err: Error & { code?: string }, incoming: IncomingMessage | undefined): void {
    socket[REFUSED] = err
    // One whose head was read has its response queued: its turn answers it (#inTurn).
    if (incoming === undefined) this.#afterResponses(socket, err)
  }

  /** Once no response is under way on the connection (each one's close, the next one then on the socket), answers the refused head. */
  #afterResponses (socket: Http1Socket, err: Error & { code?: string }): void {
    if (!socket.writable) return // a response closed the connection, or the client left: nothing is owed
    const current = socket._httpMessage
    if (current != null) current.once('close', () => this.#afterResponses(socket, err))
    else this.#refuseUnparsed(err, socket)
  }

  /** A request Node's parser refused: the gateway's JSON error on the socket, and its access-log line. */
  #refuseUnparsed (err: Error & { code?: string }, socket: Duplex): void {
    const error = parserError(err)
    if (error === GatewayError.HEADERS_TIMEOUT) this.#runtime.timedOut('client_headers')
    const id = requestId(undefined)
    if (answerOnSocket(socket, err, error.status, errorBody(error, id), `x-request-id: ${id}\r\n`)) this.#runtime.logRejected(error, id, (socket as Socket).remoteAddress)
  }

  /**
   * A pipelined request, in its turn, whose body the parser refused (400), or that waited one too
   * many (429, see waitTurn): never routed; its answer closes the connection, which is read no more.
   */
  #refuseClosing (req: IncomingMessage, res: ServerResponse, error: GatewayErrorKind): void {
    readNoMore(req.socket)
    this.#refuse(req, res, error, true)
  }

  readonly #handle: Handle = (req, res) => {
    if (this.#closing) this.#refuse(req, res, GatewayError.SHUTTING_DOWN)
    else this.#runtime.handle(req, res)
  }

  /** A request refused before routing (one Fastify could not route, one come while closing): the gateway's error, logged and counted as refused. */
  #refuse (req: IncomingMessage, res: ServerResponse, error: GatewayErrorKind, close = false): void {
    const id = requestId(req.headers['x-request-id'])
    sendError(res, error, id, close)
    this.#runtime.logRejected(error, id, this.#runtime.clientIp(req), req.method, req.url, protocolOf(req))
  }

  get runtime (): Runtime { return this.#runtime }

  /** The runtimes swapped out and still finishing their requests. */
  get retiring (): Runtime[] { return [...this.#retiring.keys()] }

  /**
   * What GET /upstreams shows: the upstreams in service, with the requests and connections that
   * retiring runtimes (each with pools of its own) still hold on the same targets.
   */
  upstreamSnapshots (): UpstreamSnapshot[] { return this.#runtime.upstreamSnapshots(this.retiring) }

  /**
   * CONNECT asks for a tunnel, which a gateway does not open: refused like any other request, not
   * just dropped. Over HTTP/1.1 Node hands over the socket, the parser detached (nothing after it is
   * parsed): refused in its turn; over HTTP/2, a response (extended CONNECT, RFC 8441, is not
   * offered: SETTINGS_ENABLE_CONNECT_PROTOCOL stays 0).
   */
  #refuseConnect (req: IncomingMessage, socketOrResponse: Duplex): void {
    const error = GatewayError.CONNECT_REFUSED
    if (!isHttp2(req)) {
      this.#handOver(socketOrResponse)
      this.#refuseHandedOver(req, socketOrResponse, error)
      return
    }
    const id = requestId(req.headers['x-request-id'])
    sendError(socketOrResponse as unknown as ServerResponse, error, id)
    this.#runtime.logRejected(error, id, this.#runtime.clientIp(req), req.method, req.url, protocolOf(req))
  }

  /**
   * `Expect` (RFC 9110 10.1.1), which Node would answer itself. `100-continue`: the request is handled
   * as any other, its 100 sent only once the gateway reads the body (holdContinue), so that a request
   * a plugin refuses (401, 413) is not invited to upload first. Any other expectation: our 417 in
   * JSON, logged, not Node's bare one. HTTP/1.1 and HTTP/2 requests alike (Node emits both here).
   */
  #handleExpect (server: HttpServer | Http2Server): void {
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      // An HTTP/1.1 request without a body has nothing to invite: Node would end its connection
      // after the answer (a 100 the client waited for, never sent), and drop a request pipelined behind.
      if (!isHttp2(req) && req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0') {
        (res as ServerResponse & { _expect_continue: boolean })._expect_continue = false
      } else {
        holdContinue(res)
      }
      server.emit('request', req, res)
    })
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => this.#serve(req, res, this.#expectationFailed))
  }

  readonly #expectationFailed: Handle = (req, res) => this.#runtime.refuse(req, res, GatewayError.EXPECTATION_FAILED)

  #handshakeFailed (err: Error & { code?: string }, socket: Duplex): void {
    socket.destroy()
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.#runtime.timedOut('client_handshake')
    this.#runtime.log.debug({ err, clientIp: (socket as Socket).remoteAddress }, 'TLS handshake failed')
  }

  #http2Cut (reason: Http2Cut, session: Http2Session): void {
    this.#runtime.http2Cut(reason)
    this.#warn(reason, { reason }, { clientIp: session.socket?.remoteAddress }, 'HTTP/2 client abuses the protocol: connection closed (GOAWAY ENHANCE_YOUR_CALM)')
  }

  /**
   * Puts `next` in service at once: every new request, also on open keep-alive connections, uses
   * it. The previous runtime retires in the background; the promise settles once it has finished
   * its in-flight requests (and WebSockets) and released its pools. Once the gateway is closing,
   * `next` is disposed of instead, and this throws: a reload that ends during a stop fails.
   */
  swap (next: Runtime): Promise<void> {
    if (this.#closing) {
      void next.dispose()
      throw new Error('the gateway is stopping')
    }
    const previous = this.#runtime
    this.#runtime = next
    this.app.server.keepAliveTimeout = keepAliveMs(next.loaded.config.server)
    this.app.server.headersTimeout = clientTimeouts(next.loaded.config.server).headers
    for (const limit of this.#limits) limit.set(next.loaded.config.server.maxConnections)
    // HTTP/2: rapidReset, settingsFlood and the header-list check reach open connections; what SETTINGS
    // announced and the idle timeout, those opened from now on (turning HTTP/2 on or off needs a restart).
    const h2 = http2Limits(next.loaded.config.server)
    if (h2 !== undefined) for (const c of [this.#h2, this.#h2c?.connections]) c?.update(h2, this.app.server.keepAliveTimeout)
    // New handshakes get the new certificates and client-auth settings; open connections keep theirs.
    if (next.loaded.serverTls !== undefined) {
      swapSecureContext(this.app.server as unknown as TlsServer, next.loaded.serverTls.options)
      this.#warnOutOfDate(next.loaded.serverTls)
    }
    // Configs retired by earlier reloads too: a credential one of them revoked may still hold a WebSocket there.
    const tunnelMs = next.loaded.config.server.reloadTunnelTimeout
    if (tunnelMs !== undefined) for (const r of this.#retiring.keys()) r.closeTunnelsAfter(toMs(tunnelMs))
    void previous.retire(next)
    const retired: Promise<void> = previous.dispose().finally(() => this.#retiring.delete(previous))
    this.#retiring.set(previous, retired)
    return retired
  }

  /**
   * Certificates outside their validity period are served all the same (at start, or kept by a
   * reload: one is refused only as a switch from another, see ServerTls.expiredRenewals), with a
   * warning at every load: a gateway that does not start is worse than one whose clients complain.
   */
  #warnOutOfDate (tls: ServerTls): void {
    for (const { index, why } of tls.outOfDate()) {
      this.#runtime.log.warn({ certificate: `server.tls.certificates[${index}]` }, `server certificate ${why}: clients will refuse it until it is renewed`)
    }
  }

  /** server.maxConnections on another listener of the gateway's (HTTPS redirects): its own limit, as large, following reloads. */
  limitConnections (listener: NetServer): void {
    this.#limits.push(new ConnectionLimit(listener, this.#runtime.loaded.config.server.maxConnections, () => this.#dropped()))
  }

  #dropped (): void {
    this.#warn('drop', { maxConnections: this.#runtime.loaded.config.server.maxConnections }, {}, 'connection limit reached: new connections are closed (server.maxConnections)')
  }

  /**
   * A warning, unless one of the same `kind` was logged in the last 10 s (then counted, for a summary
   * with the `shared` fields): a flood of one kind must not hide another.
   */
  #warn (kind: string, shared: object, fields: object, msg: string): void {
    if (this.#warnings.allow(kind, 'warn', shared, msg)) this.#runtime.log.warn({ ...shared, ...fields }, msg)
  }

  /** http or https. */
  get scheme (): string { return this.#runtime.loaded.serverTls === undefined ? 'http' : 'https' }

  async listen (host: string, port: number): Promise<AddressInfo> {
    await this.app.listen({ host, port })
    return this.app.server.address() as AddressInfo
  }

  /** Starts the h2c listener (server.http2.h2c), if there is one: after listen(). */
  async listenH2c (): Promise<AddressInfo | undefined> {
    const h2c = this.#h2c
    const at = http2Limits(this.#runtime.loaded.config.server)?.h2c
    if (h2c === undefined || at === undefined) return undefined
    h2c.server.on('error', (err: Error) => { if (h2c.server.listening) this.#runtime.log.error({ err }, 'h2c listener error') })
    return await listenH2c(h2c.server, at.host, at.port)
  }

  /**
   * Stops accepting, closes open tunnels (WebSockets with close frames), lets in-flight requests
   * finish, and after `deadlineMs` cuts what is left. Resolves when every connection is gone.
   */
  async close (deadlineMs: number): Promise<void> {
    this.#closing = true
    // Past the deadline nothing may hold the stop: client connections, tunnels still closing and upstream pools are cut.
    const timer = setTimeout(() => {
      const runtimes = [this.#runtime, ...this.#retiring.keys()]
      for (const r of runtimes) r.cutAtShutdown()
      if (this.#h2 === undefined) this.app.server.closeAllConnections()
      else this.#h2.destroy()
      this.#h2c?.connections.destroy()
      for (const s of this.#handedOver) s.destroy()
      // Upstream work is cut a turn later, once the clients' connections have closed (their close
      // events come in this turn): an upstream error must not be answered on a connection already cut.
      setTimeout(() => { for (const r of runtimes) void r.destroy() }, 0)
    }, deadlineMs)
    // A keep-alive connection whose response (its head written before the stop) ends during the
    // drain would otherwise stay open (server.close() only closes the connections idle when it is
    // called) until the deadline. Nor are connections that have sent nothing, or part of a head.
    const sweep = setInterval(() => this.#unused.close(), 100)
    this.#unused.close()
    // HTTP/2: GOAWAY to every session; their streams in flight finish, then they close.
    this.#h2?.goaway()
    const h2c = this.#h2c
    const h2cClosed = h2c === undefined || !h2c.server.listening ? undefined : new Promise(resolve => h2c.server.close(resolve))
    h2c?.connections.goaway()
    // Tunnels never end on their own: they would hold the close until the deadline cut them (1006).
    // Closed now as at a reload (Runtime.closeTunnelsAfter), WebSockets with 1001 (Going Away).
    const closed = this.app.close()
    for (const r of [this.#runtime, ...this.#retiring.keys()]) r.closeTunnelsAtShutdown()
    await closed
    await h2cClosed
    clearInterval(sweep)
    await Promise.all([this.#runtime.dispose(), ...this.#retiring.values()])
    clearTimeout(timer)
    this.#warnings.flush()
  }
}

/**
 * server.maxConnections on one listener: past it, a new connection is closed on accept, and
 * `dropped` called. Outside node:cluster, Node's own limit (net.Server.maxConnections). A cluster
 * worker does not close such a connection: it hands it back to the primary, which offers it again
 * at once, to it or a sibling, so that it waits, bounced over IPC and never logged, until one has
 * room. So in a worker the limit is counted here instead, per process as without workers.
 */
class ConnectionLimit {
  readonly #server: NetServer
  readonly #here = cluster.isWorker
  #max = Infinity
  #open = 0
  readonly #closed = (): void => { this.#open-- }

  constructor (server: NetServer, max: number | undefined, dropped: () => void) {
    this.#server = server
    // First, so that the HTTP and TLS listeners find one past the limit already closed.
    if (this.#here) {
      server.prependListener('connection', (socket: Socket) => {
        if (this.#open >= this.#max) {
          socket.destroy()
          dropped()
          return
        }
        this.#open++
        socket.once('close', this.#closed)
      })
    } else {
      server.on('drop', dropped)
    }
    this.set(max)
  }

  set (max: number | undefined): void {
    if (this.#here) this.#max = max ?? Infinity
    else this.#server.maxConnections = max ?? Infinity
  }
}

/**
 * The listener's default certificate and client-auth mode for new handshakes. setSecureContext
 * takes the certificates and client CA only: each new connection's verify mode is read from the
 * server's requestCert and rejectUnauthorized (Node 20 to 24), which stay as they were at start
 * unless set here. The mode is per connection, so SNI-chosen certificates get it too.
 */
function swapSecureContext (server: TlsServer, options: TlsOptions): void {
  server.setSecureContext(options)
  Object.assign(server, { requestCert: options.requestCert === true, rejectUnauthorized: options.rejectUnauthorized !== false })
}

/**
 * The HTTP/1.x responses of a listener. One whose head is written once the gateway is closing says
 * `Connection: close`, and Node closes the connection after it (as nginx and Envoy do when draining):
 * the client sends its next request on a new connection, to another replica, rather than meet a 503
 * (or a connection closed under it) on this one. Pipelined requests behind it go unanswered, theirs
 * to retry (RFC 9112 9.3.2). The head of every response comes here (end() and write() too).
 */
function drainingResponse (closing: () => boolean): typeof ServerResponse<IncomingMessage> {
  return class extends DispositionFirstResponse {
    override writeHead (status: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
      if (closing()) this.shouldKeepAlive = false
      return super.writeHead(status, reason as string, headers)
    }
  }
}

/** Requests waiting their turn on a connection past which the next is refused (see waitTurn). */
const MAX_WAITING = 16

/**
 * A request waits its turn. Node parses whatever a client pipelines (the responses queued behind
 * write nothing, so its own backpressure never starts) and would hold every request in memory. The
 * one that waits past MAX_WAITING is answered in its turn, after those before it, with a 429 that
 * closes the connection (as the admin API does): it and those behind it never run. From it on the
 * parser is paused (what Node read already, one chunk, is parsed: behind the close): it refuses
 * what comes and keeps nothing, while the socket is read on until the 429 is written, however much
 * comes, so that a client that leaves is seen and its requests aborted: a socket no longer read
 * does not see a reset until an answer fails to go out (Node cannot watch for one without reading),
 * and its tries would hold their pool slots until the upstream answered. Up to DISCARD_MAX: past it
 * the connection is cut (see discard).
 * Again for each request parsed after it: Node resumes its parser when its own backpressure ends.
 */
function waitTurn (socket: Http1Socket, req: IncomingMessage): void {
  socket[WAITING] = (socket[WAITING] ?? 0) + 1
  if (socket[WAITING] <= MAX_WAITING) return
  socket[TOO_MANY] ??= req
  socket.parser?.pause()
}

/** Whether a request Node hands the socket over for (an upgrade) would wait one too many: refused as any other (see waitTurn). */
const oneTooMany = (socket: Duplex): boolean => ((socket as Http1Socket)[WAITING] ?? 0) >= MAX_WAITING

const NO_BYTES = Buffer.alloc(0)

/**
 * Bytes a connection may send, thrown away, while a request refused on it waits its turn (one too
 * many waiting, a malformed head, CONNECT): the wait is the requests' before it, which a stream
 * (SSE) can make endless, as nginx bounds its lingering reads.
 */
const DISCARD_MAX = 1024 * 1024

/** Counts `chunk`, thrown away; past DISCARD_MAX the connection is cut (the requests under way on it end as their client gone). */
function discard (socket: Http1Socket, chunk: unknown): void {
  socket[DISCARDED] = (socket[DISCARDED] ?? 0) + (Buffer.isBuffer(chunk) ? chunk.length : 0)
  if (socket[DISCARDED] > DISCARD_MAX) socket.destroy()
}

/** A parser error in what the client sent, not its going away (a reset, or the connection ended mid-body). */
const unparsable = (err: { code?: string }): boolean => err.code !== undefined && err.code.startsWith('HPE_') && err.code !== 'HPE_INVALID_EOF_STATE'

/** Errors of the TLS layer (OpenSSL's, Node's handshake timeout), as opposed to the HTTP parser's. */
const isHandshakeError = (err: { code?: string }): boolean => err.code !== undefined && (err.code.startsWith('ERR_SSL_') || err.code.startsWith('ERR_TLS_'))

/**
 * The HTTP/1 server options of a listener. A missing Host is the gateway's to answer (400 bad_host
 * in JSON), not Node's (a bare 400). No time limit on a whole request (clientTimeouts bound its
 * headers and its body): Node's default, 300s, would make it refuse to create a server whose
 * headersTimeout is longer. Node checks headersTimeout every connectionsCheckingInterval (30s by
 * default: a 60s timeout fired at up to 90s).
 */
export function httpOptions (server: GatewayConfig['server']): { headersTimeout: number, requestTimeout: number, connectionsCheckingInterval: number, requireHostHeader: boolean } {
  const headersMs = clientTimeouts(server).headers
  return { headersTimeout: headersMs, requestTimeout: 0, connectionsCheckingInterval: Math.min(1_000, Math.max(50, headersMs / 4)), requireHostHeader: false }
}

export const keepAliveMs = (server: GatewayConfig['server']) => server.keepAliveTimeout === undefined ? 72_000 : toMs(server.keepAliveTimeout)
