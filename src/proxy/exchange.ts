import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, pipeline, Readable, type Duplex, type Writable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { X509Certificate } from 'node:crypto'
import type { Http2ServerRequest } from 'node:http2'
import type { Logger } from 'pino'
import type { ClientCertificate, GatewayRequest, HeaderMap, PluginReply, SubrequestResponse } from '../plugins/contract.ts'
import type { CompiledRoute } from '../runtime/compile-route.ts'
import type { RequestHook, ResponseHook } from '../plugins/pipeline.ts'
import { describeThrown, logThrown, PluginHookFailure } from '../plugins/thrown.ts'
import type { Target } from '../upstreams/upstream.ts'
import type { Consumer } from '../consumers/consumers.ts'
import type { TraceContext } from './trace-context.ts'
import type { Waiter, WaitQueue } from '../upstreams/wait-queue.ts'
import { destroyAfterLinger, errorReply, GatewayError, sendError, type GatewayErrorKind } from '../errors.ts'
import { asksClose, closeDelimited, endToEndRequestHeaders, endToEndResponseHeaders, oneValueEach, onlyChunked, pluginHopField, unwritableField, upgradeResponseHead } from './hop-by-hop.ts'
import { sendContinue } from './expect-continue.ts'
import { cutByGateway, isHttp2, resetConnection, resetIfUnread, uploadsOf, type Uploads, type UploadWaiter } from '../server/http2.ts'
import { lengthLast } from '../server/disposition-first.ts'
import { isA, NO_BODY, pluginStream, ResponseState, streamPlugin, StreamThrew, UNCHECKED } from './response-state.ts'
import { readAhead, readBody, readTo } from './read-body.ts'
import { releaseBody, reserveBody } from './body-budget.ts'
import { onBodyArrived } from './body-arrival.ts'
import { BodyRateWatch } from './body-rate.ts'
import { RequestRejected } from '../plugins/request-rejected.ts'
import { UpstreamBodyInvalid } from '../plugins/upstream-body-invalid.ts'
import { classifyFailure, malformedHead, retryReason } from '../upstreams/retry-policy.ts'
import { closeWebSocket, FrameEdges, switchesToOffered, tunnelling, type PlannedClose } from './upgrade.ts'
import { boundDiscard } from './unread-body.ts'
import { Deadlines } from '../deadlines.ts'

/** What an exchange needs from the runtime that created it. */
export interface ExchangeOwner {
  /** server.clientTimeouts.body and .send, ms (0: none); minBodyRate, bytes/s (0: none). */
  readonly clientBodyMs: number
  readonly clientMinBodyRate: number
  readonly clientSendMs: number
  /** server.requestBufferTotal, bytes: the process's budget for bodies read ahead of their connection (see body-budget.ts). */
  readonly requestBufferTotal: number
  readonly log: Logger
  finished (ex: Exchange): void
  /** The exchange became a tunnel (an upgrade went through): it stays in flight until the tunnel closes (or closeTunnel). */
  tunnelOpened (ex: Exchange): void
  /** The gateway cut the exchange short (ex.cut says why). */
  cutShort (ex: Exchange): void
  pluginFailed (ex: Exchange, err: unknown): void
  /** The route's request timeout, or server.pluginTimeout, came while a plugin's hook had not finished. */
  pluginTimedOut (ex: Exchange, failure: PluginHookFailure): void
  /** A try failed (timed out, broke, could not connect): `retried` when the request is sent again, so that every try counts. */
  upstreamFailed (ex: Exchange, err: Error, retried: boolean): void
  /** A response body stream could not read the upstream's body (UpstreamBodyInvalid). */
  upstreamBodyInvalid (ex: Exchange, err: UpstreamBodyInvalid): void
  /** The request waited its upstream's queue.timeout for an upload slot of its HTTP/2 connection: refused (503 upload_slots_busy). */
  uploadSlotsBusy (ex: Exchange): void
}

/** Why the gateway cut an exchange short, once its response had begun or while the client was still sending: logged as `error`. */
export type Cut = 'client_body_timeout' | 'client_body_too_slow' | 'client_send_timeout' | 'upstream_broken' | 'request_refused' | 'plugin_failed' | 'request_timeout' | 'bad_request' | 'upload_slots_busy' | 'reload' | 'shutdown' | 'upstream_send' | 'http2_cut'

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UPSTREAM_SEND_TIMEOUT'])
/** Failures before a connection to the target was made (a background request cannot see its onConnect). */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ETIMEDOUT', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EPROTO'])
/** As the main path, where a TLS handshake that failed (a certificate refused) comes before onConnect. */
const neverConnected = (err: unknown): boolean => {
  const code = (err as { code?: string }).code ?? ''
  return CONNECT_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code)
}
const NO_HOOK = Infinity
/** ResponseState.framer: a body stream set the head after the hooks, the streams being several plugins' (which one set it is not known). */
const BY_A_STREAM = -2
/** A plugin's reply body above this is written in slices of it (see #endWith). */
const REPLY_SLICE = 64 * 1024
const EXCHANGE = Symbol('exchange')
/** On a TLS socket: its verified client certificate (see Exchange.#peerOf). */
const PEER = Symbol('peer')
interface Peer { readonly x509: X509Certificate, cert?: ClientCertificate }
/** Why an HTTP/2 stream is reset (Node's compatibility layer does not emit it: nothing to handle). */
const STREAM_CUT = new Error('response cut short by the gateway')
const closeSocket = (socket: Duplex): void => { socket.destroy() }
/**
 * Closes a tunnel's client side, ended and flushed: what the client still sends is read and dropped
 * (bytes left unread would have the close reset the connection, and the kernel drop what the client
 * has yet to read), and a client that keeps its side open is cut after a linger.
 */
const lingerClose = (socket: Duplex): void => { socket.resume(); destroyAfterLinger(socket) }
const READABLE_PUSH = Readable.prototype.push
/** Aborts a try answered with a status to retry: its status is its outcome, not this. */
const RETRY_DROP = new Error('response dropped for a retry')
/** Aborts a try whose body a response hook replaced (replaceBody), once too long or no longer wanted: as RETRY_DROP. */
const BODY_DROP = new Error('response body replaced by a plugin')
/** A 101 that opens no tunnel the client asked for: the target's bad answer (502), never retried. */
const badUpgrade = (why: string, cause?: Error): Error => Object.assign(new Error(`the upstream's 101 ${why}`), { code: 'UPSTREAM_BAD_UPGRADE', cause })

function isPromise<T> (v: unknown): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function'
}

const framingExtra = (name: string): TypeError => new TypeError(`extraResponseHeaders may not set ${name}: the gateway frames the body`)

/** Why extraResponseHeaders cannot be written (a framing field, a field Node refuses), or undefined. */
function extraProblem (extra: HeaderMap): Error | undefined {
  for (const name in extra) if (extra[name] !== undefined && framingField(name)) return framingExtra(name)
  return unwritableField(extra)
}

/** Content-Length or Transfer-Encoding, in any case: the fields that say where a body ends. */
function framingField (name: string): boolean {
  if (name.length !== 14 && name.length !== 17) return false
  const lower = name.toLowerCase()
  return lower === 'content-length' || lower === 'transfer-encoding'
}

const DIGITS = /^\d+$/

/** A Content-Length value: one decimal number (a number, as JS plugins may set, is as good as its digits). */
function isLength (v: unknown): boolean {
  return typeof v === 'string' ? DIGITS.test(v) : Number.isSafeInteger(v) && (v as number) >= 0
}

/** Whether the head's Content-Length is another than the one #frame held its body to (state.declared; UNCHECKED: none). */
function lengthChanged (state: ResponseState): boolean {
  if (state.declared === NO_BODY) return false
  const length = state.headers['content-length']
  return state.declared === UNCHECKED ? length !== undefined : Array.isArray(length) || Number(length) !== state.declared
}

/** `v`, if a plugin may set `field` to it; else throws, saying why. */
function checkedTarget (field: 'upstreamPath' | 'query', v: unknown): string {
  const problem = targetProblem(field, v)
  if (problem !== undefined) throw new TypeError(`req.${field} ${problem}${typeof v === 'string' ? `: ${JSON.stringify(v)}` : ''}`)
  return v as string
}

/** Why a path or query cannot be what the upstream request's target is made of, or undefined. */
function targetProblem (field: 'upstreamPath' | 'query', v: unknown): string | undefined {
  if (typeof v !== 'string') return `is ${v === null ? 'null' : typeof v}, not a string`
  if (v.includes('#')) return 'holds a "#": a fragment is never sent'
  if (field === 'query') return v === '' || v.charCodeAt(0) === 63 ? undefined : 'is neither empty nor starts with "?"'
  // An absolute URL would be sent as the absolute-form and name another host; `//host` and `/\host`
  // read as one to URL parsers (WHATWG's for http takes a backslash as a slash).
  return v.charCodeAt(0) === 47 && v.charCodeAt(1) !== 47 && v.charCodeAt(1) !== 92 ? undefined
    : 'does not start with a single "/" (an absolute path, as origin-form requests have)'
}

/**
 * Why a reply cannot be sent, or undefined. A 1xx would tell the client that another response
 * follows (101: that the connection changed protocol); Node writes no status past 999.
 */
function replyProblem (reply: unknown): string | undefined {
  if (typeof reply !== 'object' || reply === null) return `${reply === null ? 'null' : typeof reply}, not a reply { status, headers?, body? }`
  const status = (reply as PluginReply).status
  if (!Number.isInteger(status) || status < 200 || status > 999) return `with status ${String(status)}: a reply's status is an integer from 200 to 999`
  return undefined
}

/** The response's Transfer-Encoding values, for the log. */
function transferCoding (raw: Buffer[]): string {
  const values: string[] = []
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as Buffer).toString('latin1').toLowerCase() === 'transfer-encoding') values.push((raw[i + 1] as Buffer).toString('latin1'))
  return values.join(', ')
}

/** The response says Content-Length: 0. */
function emptyBody (raw: Buffer[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as Buffer).toString('latin1').toLowerCase() === 'content-length') return (raw[i + 1] as Buffer).toString('latin1').trim() === '0'
  return false
}

function hasBody (req: IncomingMessage): boolean {
  // HTTP/2 frames bodies itself: a request without one ends its stream with its headers.
  if (isHttp2(req)) return !(req as unknown as Http2ServerRequest).stream.endAfterHeaders
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
}

/**
 * One proxied request, from route match to the last byte. It is the plugins' GatewayRequest and,
 * to keep the hot path to one object per request, also undici's dispatch handler.
 * Flow: request hooks (in order) → dispatch → response hooks (reverse order) → stream body.
 */
export class Exchange implements GatewayRequest, Dispatcher.DispatchHandler, Waiter, UploadWaiter {
  readonly id: string
  readonly method: string
  readonly path: string
  readonly params: Readonly<Record<string, string>>
  readonly headers: HeaderMap
  readonly clientIp: string
  readonly trace: TraceContext
  readonly raw: IncomingMessage
  readonly res: ServerResponse
  readonly compiled: CompiledRoute
  readonly startedAt: number
  target: Target | undefined
  /** Body bytes sent to the client. */
  bytes = 0
  consumer: Consumer | undefined = undefined
  /**
   * Time spent waiting for upstream response headers, over every try: answered, failed, timed out or
   * abandoned (for the gateway-overhead metric, which is the rest).
   */
  upstreamSeconds = 0
  /** Set when the gateway cut the exchange short. */
  cut: Cut | undefined = undefined
  #locals: Record<string, unknown> | undefined
  /** What the upstream request's target is made of (see the setters: plugins may change them). */
  #upstreamPath: string
  #query: string
  /** The plugin hook under way, not yet finished (async): named if the route's request timeout, or server.pluginTimeout, fires meanwhile. */
  #pendingHook: RequestHook | ResponseHook | undefined
  /** Its entry in the hook deadlines of server.pluginTimeout (see #hookPending); -1: none. */
  #hookDue = -1
  /** The deadlines of async hooks, one queue per server.pluginTimeout (a reload may change it): no timer per hook. */
  static readonly #hookDeadlines = new Map<number, Deadlines<Exchange>>()
  /** The request hook under way, sync or async (its pipeline position; NO_HOOK once the request phase is over): what a plugin passes or takes is its. */
  #hookAt = NO_HOOK
  /** The request hook under way took extraResponseHeaders: checked once it is done (see #hookDone). */
  #extraTaken = false
  /** The plugin whose request body stream failed first (its pipeline position), named in the log. */
  #bodyFailedBy = NO_HOOK
  #extraHeaders: HeaderMap | undefined
  #owner: ExchangeOwner
  #abort: ((err?: Error) => void) | undefined
  #resume: (() => void) | undefined
  #sink: Writable | undefined
  /** A response whose body goes through plugins' streams, the last linked to the client (see #startBody). */
  #streaming: ResponseState | undefined
  /**
   * A response whose hooks run (or failed), its streams not linked yet: destroyed with it if the
   * exchange ends meanwhile, a hook that never settles included (their _destroy releases what they hold).
   */
  #phase: ResponseState | undefined
  /** The head, held back until the streams put out their first byte. */
  #held: ResponseState | undefined
  /** Upstream heads written with no body byte yet, to flush (see #flushSoon): the first, and each the next. */
  static #unflushed: Exchange | undefined
  #nextUnflushed: Exchange | undefined = undefined
  #done = false
  /** Set for WebSocket (and other) upgrades: the client's socket and the bytes read past the request. */
  readonly #upgrade: { socket: Duplex, head: Buffer } | undefined
  /**
   * The client's connection (over HTTP/2, Node's stand-in for the stream), kept: undici, done with
   * a request it was sent as a body (sent, or the try aborted), sets the request's socket to null.
   */
  readonly #socket: Socket
  /** Set once the upgrade went through: closes both ends of the tunnel (`planned`: with WebSocket close frames where it can, the client's close code). */
  #tunnel: ((planned: PlannedClose | undefined) => void) | undefined
  /** Upstream attempts so far, and the targets already tried (allocated on the first retry only). */
  #tries = 0
  #pluginHost = false
  #tried: Target[] | undefined
  /** The current attempt: when it was sent, whether undici began writing it, whether it was answered. */
  #sentAt = 0
  /**
   * When its wait for response headers began: its dispatch, moved on by the time undici's write of
   * the request waited for the client's bytes (see #uploadWait) when written whole before any answer.
   */
  #waitFrom = 0
  /** When undici began writing the current try (onConnect), and whether it wrote it whole (onRequestSent). */
  #writeFrom = 0
  #requestSent = false
  /** Meanwhile, the time the target held a streamed body back (undici paused it), and since when it holds it (0: it does not). */
  #heldMs = 0
  #heldFrom = 0
  /** The current try is sent and neither answered nor over: its wait is not yet in upstreamSeconds. */
  #awaiting = false
  #connected = false
  #answered = false
  /** The current try's response status, once its headers came (0 before). */
  #tryStatus = 0
  /** An upgrade unanswered when a cut passed it over (see cutUnlessSwitched): an answer other than a 101 is cut as it comes. */
  #cutAtHead: Cut | undefined
  /** Request body bytes Node has pushed into the request so far (see #onBodyChunk). */
  #received = 0
  /** The request's body is still arriving: watched (see #watchBody), its end not pushed yet. */
  #arriving = false
  /** While the body is read ahead before a connection is taken (see #forward): the bytes to wait for (0: not reading ahead). */
  #aheadTo = 0
  /** Over HTTP/2, its connection's upload slots, while this request holds one (see #go). */
  #uploads: Uploads | undefined
  /** The request body read into memory so that a retry can send it again (RetryPolicy.buffersBody). */
  #body: Buffer | undefined
  /** Streams the request body goes through upstream (pipeBodyThrough), and their output once piped. */
  #bodyStreams: Duplex[] | undefined
  #streamedBody: Readable | undefined
  /** Set while a retryable error response is dropped (or, bodyless, completes): the target the request is sent to next. */
  #retryTo: Target | undefined
  /** The response head as written (writeHead with an object leaves res.getHeaders() empty). */
  #written: Record<string, string | string[] | number | undefined> | undefined
  /** The route's whole-request timeout, when it has one. */
  #deadline: NodeJS.Timeout | undefined
  /** While the client may not read the response (server.clientTimeouts.send). */
  #sendTimer: NodeJS.Timeout | undefined
  /** From the end of the response until the client has read it (see #end), or of a tunnel the upstream ended (#tunnelEnded). */
  #tailTimer: NodeJS.Timeout | undefined
  /** While the last body stream is paused for the client to read what it put out (see #onStreamOutput). */
  #outputTimer: NodeJS.Timeout | undefined
  /** While the request body arrives, when server.clientTimeouts.minBodyRate is set. */
  #bodyRate: BodyRateWatch | undefined
  /** Waiting for the client to drain what was written. */
  #draining = false
  /**
   * Response hooks still run, the head unwritten; and meanwhile the upstream's response ended
   * (undici ends a HEAD's at once, paused or not), or failed (the error to answer once they are done).
   */
  #headPending = false
  #endAfterHead = false
  #failAfterHead: GatewayErrorKind | undefined
  /** A body stream refused the request while response hooks ran on the upstream's answer: answered in that answer's place once they are done (see #rejected). */
  #refusedAfterHead: Error | undefined
  /** A response hook replaced the upstream's body (replaceBody): what of the upstream's comes is dropped, and counted. */
  #replaced = false
  #dropped = 0
  /** The response is small enough (upstream responseBuffer) to be read whole whatever the client's pace. */
  #buffered = false
  /** The response timeout of the current try when we keep it, not undici (see #dispatch); and its timer. */
  #responseMs = 0
  /** The try whose 1xx started #headersTimer (see #informational). */
  #informationalTry = 0
  #headersTimer: NodeJS.Timeout | undefined
  /** While the upstream takes none of a streamed request body, or of a tunnel's bytes (its backpressure holds them paused): the idle timeout's timer. */
  #stallTimer: NodeJS.Timeout | undefined
  #watchingStall = false
  /**
   * While the request waits for a connection (Upstream.queue), or for an upload slot of its HTTP/2
   * connection: the links of its queue, the queue, since when it waits (0: it does not), its timer.
   */
  waitPrev: Exchange | undefined = undefined
  waitNext: Exchange | undefined = undefined
  #queue: WaitQueue<Waiter> | WaitQueue<UploadWaiter> | undefined
  #waitStart = 0
  #waitTimer: NodeJS.Timeout | undefined
  /** While its body is read ahead (see #forward, #wait): Node's own mark for the request's buffer, to restore (0: none). */
  #mark = 0
  /** Bytes of the process's body budget it holds (see #reserve), until its body is handed over or it ends. */
  #reserved = 0

  constructor (owner: ExchangeOwner, route: CompiledRoute, req: IncomingMessage, res: ServerResponse,
    path: string, query: string, params: Record<string, string>, id: string, headers: HeaderMap, clientIp: string,
    trace: TraceContext, upgrade?: { socket: Duplex, head: Buffer }) {
    this.#upgrade = upgrade
    this.#socket = req.socket
    this.#peer = Exchange.#peerOf(req.socket)
    this.#owner = owner
    this.compiled = route
    this.raw = req
    this.res = res
    this.method = req.method as string
    this.path = path
    this.#query = query
    this.params = params
    this.id = id
    this.headers = headers
    this.clientIp = clientIp
    this.trace = trace
    this.#upstreamPath = route.upstreamPath(path, params)
    this.startedAt = performance.now()
  }

  get upstreamPath (): string { return this.#upstreamPath }
  get query (): string { return this.#query }
  // Refused where a plugin sets them (its hook throws: a 500 plugin_error naming what was wrong).
  set upstreamPath (v: string) { this.#upstreamPath = checkedTarget('upstreamPath', v) }
  set query (v: string) { this.#query = checkedTarget('query', v) }
  get clientHeaders () { return this.raw.headers }
  get hasBody (): boolean { return hasBody(this.raw) }
  get upgrade (): boolean { return this.#upgrade !== undefined }
  get ended (): boolean { return this.#done }
  /**
   * The client's verified certificate, taken when the request came (see #peerOf): a plugin may ask
   * once the connection is gone (onFinished; over HTTP/2 req.socket then no longer reaches it).
   */
  readonly #peer: Peer | undefined
  get clientCertificate (): ClientCertificate | undefined {
    const peer = this.#peer
    if (peer === undefined) return undefined
    if (peer.cert === undefined) {
      const c = peer.x509.toLegacyObject()
      // Frozen: the connection's requests share it.
      const subject = c.subject as unknown as Record<string, string | string[]>
      for (const v of Object.values(subject)) Object.freeze(v)
      peer.cert = Object.freeze({ subject: Object.freeze(subject), fingerprint256: c.fingerprint256, serialNumber: c.serialNumber, validTo: c.valid_to })
    }
    return peer.cert
  }

  /**
   * A TLS connection's verified client certificate, once per connection: its X509 object (cheap,
   * and readable after the connection closes, unlike getPeerCertificate()), converted for plugins
   * on first read only, shared by the connection's requests.
   */
  static #peerOf (socket: Socket): Peer | undefined {
    const tls = socket as TLSSocket & { [PEER]?: Peer }
    if (tls.authorized !== true) return undefined
    const cached = tls[PEER]
    if (cached !== undefined) return cached
    // Undefined once the connection is gone (its client left before the request was taken).
    const x509 = tls.getPeerX509Certificate()
    return x509 === undefined ? undefined : (tls[PEER] = { x509 })
  }
  get route () { return this.compiled.info }
  /** The status to log: 101 for an upgrade that went through. */
  get status (): number { return this.#tunnel !== undefined ? 101 : this.res.statusCode }
  get locals (): Record<string, unknown> { return (this.#locals ??= {}) }
  get extraResponseHeaders (): HeaderMap {
    this.#extraTaken = true
    return (this.#extraHeaders ??= {})
  }
  /** The response headers sent to the client (for logging.headers). */
  get responseHeaders (): Readonly<Record<string, unknown>> { return this.#written ?? this.res.getHeaders() }
  /**
   * The response went out whole: ended by the gateway and handed to the client's connection. Not
   * writableFinished alone: Node ends an HTTP/2 stream's writable side when the client resets it
   * (RST_STREAM CANCEL), which then reads as finished though nothing was sent.
   */
  get sentWhole (): boolean { return this.res.writableFinished && this.res.writableEnded }
  /** Upstream attempts made (more than 1 when retried). */
  get tries (): number { return this.#tries }
  /** Request body bytes received from the client (not as declared: a Content-Length is only the client's word). */
  get requestBytes (): number { return this.#received }

  /**
   * Node's HTTP/1.1 parser cannot read the rest of `req`'s body (a malformed chunk, a forbidden
   * trailer): its exchange, if under way, answers 400 and closes the connection (where the next
   * request would begin is unknown), or cuts the response already begun; the upstream try is
   * aborted. Logged as the request's own line, error bad_request. False when no exchange is under way.
   */
  static bodyUnreadable (req: IncomingMessage, err: Error): boolean {
    const ex = (req as IncomingMessage & { [EXCHANGE]?: Exchange })[EXCHANGE]
    if (ex === undefined || ex.#done || ex.sentWhole) return false
    ex.cut = 'bad_request'
    ex.abortUpstream(err)
    if (ex.res.headersSent) { ex.#destroy(); return true }
    ex.#dropStreams() // a held head: the error is answered in its place
    ex.#sendError(GatewayError.BAD_REQUEST, true)
    return true
  }

  /** Starts the request phase; the exchange then drives itself to completion. */
  start (): void {
    ;(this.res as ServerResponse & { [EXCHANGE]?: Exchange })[EXCHANGE] = this
    this.res.on('close', Exchange.#onResponseClose)
    if (this.compiled.requestTimeout > 0) this.#deadline = setTimeout(Exchange.#onDeadline, this.compiled.requestTimeout, this)
    const req = this.raw
    if (hasBody(req)) {
      // What Node pushed in before the exchange began (nothing reads it before), then each chunk as it comes.
      this.#received = req.readableLength
      // An upgrade's request is complete at its head: Node hands what follows to the tunnel.
      if (!req.complete) this.#watchBody(req)
    }
    this.#requestPhase(0)
  }

  /** A request body still to come: counted, and over HTTP/2 or with client timeouts, watched. */
  #watchBody (req: IncomingMessage): void {
    this.#arriving = true
    ;(req as IncomingMessage & { [EXCHANGE]?: Exchange })[EXCHANGE] = this
    req.push = Exchange.#onBodyChunk
    if (isHttp2(req)) {
      const stream = (req as unknown as Http2ServerRequest).stream as Duplex & { [EXCHANGE]?: Exchange }
      stream[EXCHANGE] = this
      req.once('close', Exchange.#dropUnreadBody)
      stream.once('finish', Exchange.#dropUnreadBody)
    }
    if (this.#owner.clientBodyMs > 0 || this.#owner.clientMinBodyRate > 0) {
      // Timed only while the gateway reads the body (see #onBodyRead), not while it holds it unread.
      req.on('timeout', Exchange.#onBodyTimeout).on('resume', Exchange.#onBodyRead).on('pause', Exchange.#onBodyUnread)
      onBodyArrived(req, Exchange.#onBodyArrived)
    }
  }

  #requestPhase (from: number): void {
    const hooks = this.compiled.pipeline.requestHooks
    for (let i = from; i < hooks.length; i++) {
      const hook = hooks[i] as (typeof hooks)[number]
      this.#hookAt = hook.position
      let result
      try {
        result = hook.run(this)
      } catch (err) {
        this.#owner.pluginFailed(this, this.#hookFailure(hook.position, err)); return
      }
      if (isPromise<PluginReply | undefined | void>(result)) {
        this.#hookPending(hook)
        result.then(
          reply => {
            if (this.#done) return
            this.#hookSettled()
            if (!this.#hookDone(hook.position)) return
            if (reply !== undefined) this.#reply(reply as PluginReply, hook.position); else this.#requestPhase(i + 1)
          },
          err => { if (!this.#done) { this.#hookSettled(); this.#owner.pluginFailed(this, this.#hookFailure(hook.position, err)) } })
          .catch(err => { this.gatewayFailed(err) })
        return
      }
      if (!this.#hookDone(hook.position)) return
      if (result !== undefined) { this.#reply(result as PluginReply, hook.position); return }
    }
    this.#hookAt = NO_HOOK
    this.#forward()
  }

  /**
   * A request hook is done: the extraResponseHeaders it took are checked now, so that one it made
   * unwritable is its failure, named, not found only when the head is written. False if so.
   */
  #hookDone (position: number): boolean {
    if (!this.#extraTaken) return true
    this.#extraTaken = false
    const problem = extraProblem(this.#extraHeaders as HeaderMap)
    if (problem === undefined) return true
    this.#owner.pluginFailed(this, this.#hookFailure(position, problem))
    return false
  }

  #forward (): void {
    const upstream = this.compiled.upstream
    // Node refuses a Content-Length beside a Transfer-Encoding: a length is never a chunked body's.
    const length = this.raw.headers['content-length']
    // Read whole first: a small body, so that a slow uploader holds no upstream connection; a body a retry may send again.
    // Never one going through plugins' body streams: it is streamed, bounded by them (a decoded body could be any size).
    // Past the process's budget, streamed instead (for good: #mark says its read-ahead began, the body paused).
    if (this.#body === undefined && this.#upgrade === undefined && this.#bodyStreams === undefined && length !== undefined && length !== '0' &&
        (Number(length) <= upstream.requestBuffer || upstream.retry.buffersBody(this.method, length)) && this.#mark === 0 && this.#reserve(Number(length))) {
      // A client that goes away mid-body is handled by #closed.
      sendContinue(this.res)
      readBody(this.raw).then(body => { this.#body = body; if (!this.#done) this.#forward() }, () => {})
        .catch(err => { this.gatewayFailed(err) })
      return
    }
    // A streamed body (over requestBuffer, or of unknown length: chunked, HTTP/2's) takes no
    // connection before its first bytes, or its end, are in: a client that sends none holds none
    // (two HTTP/2 connections of HEADERS alone took a target's every one). Not more: an interactive
    // stream (gRPC, a message then a wait for its answer) goes on at once.
    if (this.#arriving && this.#received === 0) { this.#readAhead(1); return }
    const target = upstream.pick(this)
    if (target === undefined) { this.#failUpstream(GatewayError.NO_HEALTHY_TARGET); return }
    this.#send(target)
  }

  /** Reads the body on, unread, until `bytes` of it are in, or its end (see #onBodyChunk); the wait is the client's, timed as when the body is read. */
  #readAhead (bytes: number): void {
    const req = this.raw
    sendContinue(this.res)
    this.#aheadTo = bytes
    this.#mark = readAhead(req, bytes)
    Exchange.#onBodyRead.call(req)
  }

  /** Read ahead far enough: the wait for a connection is the gateway's, the body held paused meanwhile (its timers stop: see #onBodyUnread). */
  static #onAhead (ex: Exchange): void {
    if (ex.#done) return
    ex.raw.pause()
    ex.#forward()
  }

  /** The Host the route sends to `target`. */
  #hostFor (target: Target): string | undefined {
    const host = this.compiled.host
    return host === 'target' ? target.host : host === 'client' ? this.raw.headers.host : host.value
  }

  async subrequest (method: string, headers: HeaderMap): Promise<SubrequestResponse> {
    const route = this.compiled
    const upstream = route.upstream
    const target = upstream.pick(this)
    if (target === undefined) throw new Error(GatewayError.NO_HEALTHY_TARGET.message)
    // Background work never queues for a slot nor takes the last one from client requests.
    if (!upstream.hasRoom(target)) throw new Error(`target ${target.url} has no free connection slot`)
    const h = { ...headers, host: headers.host ?? this.#hostFor(target), 'x-request-id': this.id }
    const sentAt = upstream.begin(target)
    try {
      const r = await target.pool.request({
        path: this.upstreamPath + this.query,
        method: method as Dispatcher.HttpMethod,
        headers: h as Record<string, string | string[]>,
        headersTimeout: route.responseTimeout,
        bodyTimeout: route.bodyTimeout,
        servername: target.servername
      } as Parameters<typeof target.pool.request>[0])
      // As a proxied response's (a cache stores it for clients of either protocol), or refused.
      const coding = r.headers['transfer-encoding']
      const invalid = r.statusCode > 599 ? `the upstream answered with status ${r.statusCode}, outside 100-599`
        : coding !== undefined && !onlyChunked(String(coding)) ? `the upstream's response uses a transfer coding other than chunked (${String(coding)})`
          : undefined
      const headers = endToEndRequestHeaders(r.headers)
      const repeated = oneValueEach(headers)
      if (invalid !== undefined || repeated !== undefined) {
        r.body.once('error', () => {}).destroy()
        throw new Error(invalid ?? `the upstream's response repeats ${repeated} with another value, a field that may appear once`)
      }
      upstream.outcome(target, r.statusCode < 500, sentAt, true, r.statusCode)
      r.body.once('close', () => upstream.end(target))
      // As closeDelimited() reads a proxied response's raw head (RFC 9112 6.3), from undici's parsed one.
      const closed = method !== 'HEAD' && r.statusCode !== 204 && r.statusCode !== 304 && r.headers['content-length'] === undefined && r.headers['transfer-encoding'] === undefined
      return { status: r.statusCode, headers, body: r.body, closeDelimited: closed }
    } catch (err) {
      upstream.outcome(target, false, sentAt, !neverConnected(err))
      upstream.end(target)
      throw err
    }
  }

  /**
   * Sends the request to `target` (again, on a retry) if it has a free slot; else the request
   * waits for one in the gateway, never in undici's pool, where it could not be taken back.
   */
  #send (target: Target): void {
    this.target = target
    const h = this.headers
    // A Host set by a request plugin wins over the route's choice, on every try.
    if (this.#tries === 0) this.#pluginHost = h.host !== undefined
    if (!this.#pluginHost) h.host = this.#hostFor(target)
    h['x-request-id'] = this.id
    this.#go(target)
  }

  /**
   * To `target` now if it has a free slot, else into its queue. Over HTTP/2 a body still arriving
   * first takes one of its connection's upload slots (server.http2.maxStreamingUploads), or waits for one.
   */
  #go (target: Target): void {
    if (this.#arriving && this.#uploads === undefined && isHttp2(this.raw) && !this.#mayUpload()) return
    if (this.compiled.upstream.hasRoom(target)) this.#dispatch(target)
    else this.#wait(target)
  }

  #mayUpload (): boolean {
    const uploads = uploadsOf(this.raw)
    if (uploads === undefined) return true
    if (uploads.take()) { this.#uploads = uploads; return true }
    this.#enqueue(uploads.waiting)
    return false
  }

  /** An upload slot of its connection is this request's now (Uploads.give). */
  uploadAdmitted (uploads: Uploads): void {
    this.#queue = undefined
    this.#uploads = uploads
    this.#go(this.target as Target)
  }

  /** Gives back its connection's upload slot, if it holds one. */
  #freeUpload (): void {
    const uploads = this.#uploads
    if (uploads === undefined) return
    this.#uploads = undefined
    uploads.give()
  }

  /**
   * The whole body is in (deferred from its push): a read-ahead goes on; an upload slot is given
   * back, or no longer waited for.
   */
  static #onBodyIn (ex: Exchange): void {
    if (ex.#aheadTo > 0) { ex.#aheadTo = 0; Exchange.#onAhead(ex); return }
    ex.#freeUpload()
    const queue = ex.#queue
    if (queue === undefined || queue === ex.target?.waiting) return
    queue.remove(ex)
    ex.#queue = undefined
    ex.#go(ex.target as Target)
  }

  #dispatch (target: Target): void {
    const route = this.compiled
    const req = this.raw
    this.#tries++
    this.#connected = this.#answered = this.#requestSent = false
    this.#tryStatus = 0
    if (this.#waitStart > 0) this.#waited()
    if (this.#mark > 0) { readTo(req, this.#mark); this.#mark = 0 }
    // A body read on is handed over: the connection bounds it now. One read whole stays held (sent
    // again by a retry, which may wait in a queue once more) until the request ends.
    if (this.#reserved > 0 && this.#body === undefined) this.#release()
    route.pipeline.onUpstreamTry?.(this, target, this.#tries)
    this.#waitFrom = this.#sentAt = route.upstream.begin(target)
    this.#awaiting = true
    const body = this.#body ?? (hasBody(req) && this.#upgrade === undefined ? this.#requestBody() : null)
    const streamed = body !== null && body !== this.#body
    // undici counts its response timeout from the dispatch, so an upload slower than it would time
    // out: a streamed body's try, like a short timeout, gets our timer, started once the body is sent.
    this.#responseMs = streamed ? route.responseTimeout : route.preciseHeadersTimeout
    if (streamed && !this.#watchingStall) this.#watchStall(body as Readable)
    target.pool.dispatch({
      path: this.upstreamPath + this.query,
      method: this.method as Dispatcher.HttpMethod,
      headers: this.headers as Record<string, string | string[]>,
      body,
      upgrade: this.#upgrade === undefined ? null : String(req.headers.upgrade),
      // No `reset`: undici itself closes the connection after a body sent with a method other than
      // PUT, POST, PATCH (a GET's body has no defined meaning, RFC 9110 9.3: an upstream that ignores
      // it would read it as the next request), and after a HEAD. test/http1-edge-cases.test.ts holds it to that.
      headersTimeout: streamed ? 0 : route.headersTimeout,
      bodyTimeout: route.bodyTimeout,
      servername: target.servername
    } as Dispatcher.DispatchOptions, this)
  }

  /**
   * undici pauses a streamed body while the upstream's socket takes no more of it, and resumes it on
   * drain. Paused longer than the idle timeout, the try fails as the upstream's (nginx's
   * proxy_send_timeout); meanwhile the client's body timeout is held, since the gateway is the one not reading.
   */
  #watchStall (body: Readable): void {
    this.#watchingStall = true
    ;(body as Readable & { [EXCHANGE]?: Exchange })[EXCHANGE] = this
    body.on('pause', Exchange.#onBodyHeld).on('resume', Exchange.#onBodyTaken)
  }

  /** Queues the request for `target`'s next free slot, or refuses it when the queue is full. */
  #wait (target: Target): void {
    const upstream = this.compiled.upstream
    if (target.waiting.length >= upstream.queue.max) { this.#refuse(target, 'queue-full'); return }
    this.#enqueue(target.waiting)
    // A streamed HTTP/1.1 body is read on meanwhile, up to requestBuffer (as a buffered body is):
    // else a client that leaves once Node's buffer is full goes unseen, holding its place until
    // admitted. HTTP/2 sees a reset stream or a closed connection whatever is read. Not past the
    // process's budget: the body then waits in Node's own buffer.
    const req = this.raw
    if (!req.complete && !isHttp2(req) && hasBody(req) && this.#reserve(upstream.requestBuffer)) {
      // Node's own mark kept from a wait for the body's first bytes (#readAhead), if any.
      const mark = readAhead(req, upstream.requestBuffer)
      if (this.#mark === 0) this.#mark = mark
    }
  }

  /** Takes `bytes` of the process's body budget, if they fit. */
  #reserve (bytes: number): boolean {
    if (!reserveBody(bytes, this.#owner.requestBufferTotal)) return false
    this.#reserved += bytes
    return true
  }

  #release (): void {
    releaseBody(this.#reserved)
    this.#reserved = 0
  }

  /** Waits in `queue`: for a upload slot of its connection, then a target's slot, one queue.timeout for both. */
  #enqueue (queue: WaitQueue<Waiter> | WaitQueue<UploadWaiter>): void {
    queue.push(this)
    this.#queue = queue
    if (this.#waitStart > 0) return
    this.#waitStart = performance.now()
    const ms = this.compiled.upstream.queue.timeoutMs
    if (ms > 0) this.#waitTimer = setTimeout(Exchange.#onQueueTimeout, ms, this)
  }

  /** The wait is over: counted (Upstream.waited). */
  #waited (): void {
    clearTimeout(this.#waitTimer)
    this.compiled.upstream.waited(performance.now() - this.#waitStart)
    this.#waitStart = 0
  }

  /** Not a retry: any target of the upstream will do (see Upstream.end). */
  get movable (): boolean { return this.#tried === undefined }

  /** Its turn in the queue has come (Upstream.end), on `target` or on another target's free slot. */
  admit (target: Target): void {
    this.#queue = undefined
    if (target !== this.target) {
      this.target = target
      if (!this.#pluginHost) this.headers.host = this.#hostFor(target)
    }
    this.#dispatch(target)
  }

  #leaveQueue (): void {
    const queue = this.#queue
    if (queue === undefined) return
    clearTimeout(this.#waitTimer)
    queue.remove(this)
    this.#queue = undefined
  }

  #refuse (target: Target, reason: 'queue-full' | 'queue-timeout'): void {
    // Full after a wait for an upload slot: that wait's timer would refuse it a second time.
    clearTimeout(this.#waitTimer)
    this.compiled.upstream.busy(target, reason)
    this.#failUpstream(GatewayError.UPSTREAM_BUSY)
  }

  /**
   * Its HTTP/2 connection's other uploads held every upload slot for queue.timeout: the client's
   * doing, not the target's (which may have connections free), so a code of its own, also the
   * access log's `error` (as for a 400 bad_request: `cut` is what the log names).
   */
  #refuseUpload (): void {
    this.cut = 'upload_slots_busy'
    this.#owner.uploadSlotsBusy(this)
    this.#failUpstream(GatewayError.UPLOAD_SLOTS_BUSY)
  }

  pipeBodyThrough (stream: Duplex): void {
    pluginStream(stream, this.#bodyStreams, 'pipeBodyThrough')
    ;(this.#bodyStreams ??= []).push(stream)
    // The first stream to fail is the one at fault: the chain then fails the others with its error.
    // Listened to for good, from now: a stream may fail before undici takes the body (a request
    // admitted from undici's onComplete waits in undici's pool a loop turn while its body flows),
    // and pipe() re-emits an error nobody else listens to, uncaught. undici, taking an errored body,
    // aborts the try with its error: answered then (see #rejected).
    const by = this.#hookAt
    stream.on('error', () => { if (this.#bodyFailedBy === NO_HOOK) this.#bodyFailedBy = by })
  }

  /** The body to send upstream: the client's request, or the end of the streams plugins added. */
  #requestBody (): Readable {
    sendContinue(this.res)
    const streams = this.#bodyStreams
    if (streams === undefined) return this.raw
    if (this.#streamedBody !== undefined) return this.#streamedBody
    // Piped, not pipelined from raw: a failing stream must not destroy the client's socket, which
    // still has to carry the answer (a 413). pipe() unpipes raw when the first stream closes.
    if (streams.length > 1) pipeline(streams, () => {}) // an error reaches undici through the last stream
    this.raw.pipe(streams[0] as Duplex)
    return (this.#streamedBody = streams[streams.length - 1] as Duplex)
  }

  // undici's callback API: undici 7 runs it natively (the newer controller API is wrapped per request).
  onConnect (abort: (err?: Error) => void): void {
    // Ended while undici held it (the moment between a slot freeing and the connection taking it):
    // never sent. Its onError follows at once and gives the slot back.
    if (this.#done) { abort(new Error('request ended before it was sent')); return }
    this.#abort = abort
    this.#connected = true
    this.#writeFrom = performance.now()
    this.#heldMs = this.#heldFrom = 0
  }

  // Counted from the end of the request body, not its start: the upload is not the upstream's delay.
  // Already answered (a response that began before the upload ended, as undici reports it): none.
  // So is its response time (metrics, balancing), less only the write's wait for the client (#uploadWait), unless it answered first: then from the dispatch (see #tryWaited).
  onRequestSent (): void {
    clearTimeout(this.#stallTimer)
    this.#requestSent = true
    this.#waitFrom += this.#uploadWait(performance.now())
    if (this.#responseMs > 0 && !this.#done && !this.#answered) this.#headersTimer = setTimeout(Exchange.#onHeadersTimeout, this.#responseMs, this)
  }

  onUpgrade (_status: number, raw: Buffer[] | string[] | null, upstream: Duplex): void {
    clearTimeout(this.#headersTimer)
    this.#tryWaited()
    this.#tryStatus = 101
    // A switch to a protocol the client did not offer (nor the route allow) is the target's fault: a 502, no tunnel.
    const offered = String(this.raw.headers.upgrade)
    const wrong = switchesToOffered(raw ?? [], offered) ? undefined : badUpgrade(`switches to a protocol the client did not offer (${offered})`)
    this.#tryEnded(wrong)
    const client = (this.#upgrade as { socket: Duplex, head: Buffer }).socket
    this.compiled.upstream.outcome(this.target as Target, wrong === undefined, this.#sentAt, true)
    this.compiled.upstream.end(this.target as Target)
    if (this.#done || wrong !== undefined) upstream.destroy()
    if (this.#done) return
    if (wrong !== undefined) {
      this.#owner.upstreamFailed(this, wrong, false)
      this.#failUpstream(GatewayError.UPSTREAM_BAD_UPGRADE)
      return
    }
    // Hop-by-hop fields are for this hop (Keep-Alive, Proxy-Authenticate, those Connection names): not
    // relayed. The request phase's extraResponseHeaders are (response hooks do not run: a tunnel follows).
    let head
    try {
      head = upgradeResponseHead(raw ?? [], this.#extraHeaders)
    } catch (err) {
      upstream.destroy()
      this.#owner.pluginFailed(this, err); return
    }
    clearTimeout(this.#deadline) // a WebSocket lives as long as its ends want (or server.reloadTunnelTimeout: see closeTunnel)
    client.write(`HTTP/1.1 101 Switching Protocols\r\n${head}x-request-id: ${this.id}\r\n\r\n`, 'latin1')
    const head0 = (this.#upgrade as { head: Buffer }).head
    if (head0.length > 0) upstream.write(head0)
    // Once close frames are sent (see closeWebSocket): each end closes on its own, until this timer.
    let closing: NodeJS.Timeout | undefined
    const closeBoth = () => { clearTimeout(closing); client.destroy(); upstream.destroy() }
    const broken = () => { if (closing === undefined) closeBoth() }
    // A WebSocket's frames are followed both ways, so that a planned close can add a close frame at
    // a frame's end; an extension other than permessage-deflate may frame otherwise: not followed.
    const frames = knownFraming(raw ?? [])
      ? { toClient: new FrameEdges(), toUpstream: new FrameEdges() }
      : undefined
    this.#tunnel = planned => {
      if (closing !== undefined || planned === undefined || frames === undefined) { closeBoth(); return }
      clearTimeout(this.#sendTimer)
      clearTimeout(this.#stallTimer)
      closing = setTimeout(closeBoth, WEBSOCKET_CLOSE_GRACE_MS).unref()
      closeWebSocket(client, upstream, frames, planned)
    }
    tunnelling(client) // its end is now the tunnel's (below), no longer the client gone
    // The upstream's end (pipe() ends the client's side) closes the client's connection once what it
    // was sent is flushed (see #tunnelEnded); a break closes both at once. Its close follows an error.
    upstream.on('error', () => {}).once('close', () => { if (closing !== undefined) return; if (upstream.readableEnded) this.#tunnelEnded(client); else closeBoth() })
    client.on('error', broken).on('close', broken)
    upstream.pipe(client)
    client.pipe(upstream)
    if (frames !== undefined) {
      frames.toUpstream.see(head0)
      upstream.on('data', frames.toClient.see)
      client.on('data', frames.toUpstream.see)
    }
    // The client's end leaves the upstream what it may still send, each pause no longer than the
    // route's timeouts.idle: past it, both are closed.
    const idleMs = this.compiled.bodyTimeout
    if (idleMs > 0) client.once('end', () => { (upstream as Socket).setTimeout(idleMs, closeBoth) })
    // pipe() pauses the upstream while the client has not read what it was sent: a client that
    // reads nothing for clientTimeouts.send is cut, as on HTTP. An idle tunnel is not.
    if (this.#owner.clientSendMs > 0) {
      upstream.on('pause', () => {
        if (client.writableNeedDrain) this.#startSendTimer()
      })
      client.on('drain', () => { clearTimeout(this.#sendTimer) })
    }
    // Mirrored: pipe() stops reading the client while the upstream has not read what it was sent, so
    // the client's FIN or RST goes unseen. An upstream that reads nothing for timeouts.idle is cut, as
    // nginx's proxy_send_timeout.
    if (idleMs > 0) {
      client.on('pause', () => {
        if (!upstream.writableNeedDrain) return
        clearTimeout(this.#stallTimer)
        this.#stallTimer = setTimeout(Exchange.#onTunnelStall, idleMs, this)
      })
      upstream.on('drain', () => { clearTimeout(this.#stallTimer) })
    }
    // Last: the owner may close the tunnel at once (see closeTunnel).
    this.#owner.tunnelOpened(this)
  }

  static #onTunnelStall (ex: Exchange): void {
    ex.#owner.upstreamFailed(ex, Object.assign(new Error(`the upstream took none of the tunnel's bytes for ${ex.compiled.bodyTimeout} ms (idle timeout)`), { code: 'UPSTREAM_SEND_TIMEOUT' }), false)
    ex.closeTunnel('upstream_send')
  }

  /**
   * The gateway closes an open tunnel, both ends at once, for `cut` (logged as the exchange's
   * `error`). A WebSocket closed for a reload or a shutdown is sent close frames first (see closeWebSocket).
   */
  closeTunnel (cut: Cut): void {
    if (this.#tunnel === undefined || this.#done) return
    this.cut = cut
    this.#tunnel(PLANNED_CLOSES[cut])
  }

  /** The gateway ends an exchange that is no tunnel unfinished, for `cut`: its response cut, begun or not (see #destroy). */
  cutOff (cut: Cut): void {
    if (this.#done || this.#tunnel !== undefined || this.sentWhole) return
    this.cut = cut
    this.#destroy()
  }

  /**
   * An upgrade whose answer has not been sent: a 101 is left to its owner (tunnelOpened closes
   * it), any other answer is cut for `cut`, now if it has come (response hooks hold its head), else
   * as it comes: an upstream that ignores Upgrade would otherwise stream it for as long as it likes.
   */
  cutUnlessSwitched (cut: Cut): void {
    if (this.#answered) this.cutOff(cut)
    else this.#cutAtHead = cut
  }

  /**
   * The upstream ended the tunnel. The client's connection is closed once the bytes still held for it
   * are flushed: destroyed at once, a client reading slowly would lose them, then read the end as if
   * it had all. One that reads none of them for clientTimeouts.send (without it, the route's
   * timeouts.idle) is cut, as while the tunnel was open: each drain restarts the time.
   */
  #tunnelEnded (client: Duplex): void {
    if (client.destroyed) return // the client's close closed the upstream's side
    if (client.writableFinished) { lingerClose(client); return }
    client.once('finish', () => { clearTimeout(this.#tailTimer); lingerClose(client) })
    const ms = this.#owner.clientSendMs > 0 ? this.#owner.clientSendMs : this.compiled.bodyTimeout
    if (ms <= 0) return
    clearTimeout(this.#sendTimer)
    const restart = () => {
      clearTimeout(this.#tailTimer)
      this.#tailTimer = setTimeout(Exchange.#onTailTimeout, ms, this)
    }
    restart()
    client.on('drain', restart)
  }

  onHeaders (status: number, raw: Buffer[], resume: () => void): boolean {
    // 1xx informational: the gateway sends its own 100 Continue (sendContinue).
    if (status < 200) { this.#informational(); return true }
    clearTimeout(this.#headersTimer)
    clearTimeout(this.#stallTimer)
    const upstream = this.compiled.upstream
    this.#answered = true
    this.#tryStatus = status
    // Not awaiting: the exchange abandoned the try first, its wait already counted.
    if (this.#awaiting) {
      const waited = this.#tryWaited()
      this.compiled.metrics?.upstreamAnswered(waited)
      // How fast the target answered is known now; whether it answered well, below 500, only once
      // the body is in (onComplete, onError): one broken mid-body is a failure (Upstream.outcome).
      if (status < 500) (this.target as Target).latency.observe(waited * 1000, this.#waitFrom + waited * 1000)
    }
    if (status >= 500) upstream.outcome(this.target as Target, false, this.#sentAt, true, status, this.#waitFrom)
    if (this.#cutAtHead !== undefined && !this.#done) {
      // An upgrade a cut passed over, answered otherwise than by a 101 (see cutUnlessSwitched).
      this.cutOff(this.#cutAtHead)
      this.abortUpstream(new Error(`the upgrade was answered ${status} after the gateway had cut its config's requests`))
      return false
    }
    // Returning false would pause the connection for good: close it instead.
    if (this.#done) { (this.#abort as (err?: Error) => void)(new Error('request ended before its response')); return false }
    if (upstream.retry.retriesStatus(status, this.method) && this.#retryFor(String(status))) {
      // Without a body (a HEAD's, Content-Length: 0), undici completes it at once, connection kept: sent again then.
      if (this.method === 'HEAD' || status === 204 || status === 304 || emptyBody(raw)) return true
      // Its body is not wanted, and might never end: the connection is closed, the request sent again now (see onError).
      ;(this.#abort as (err?: Error) => void)(RETRY_DROP)
      return false
    }
    // No such status (RFC 9110 15: handled as a 5xx): a 502, not passed on as "600 unknown".
    if (status > 599) {
      (this.#abort as (err?: Error) => void)(Object.assign(new Error(`the upstream answered with status ${status}, outside 100-599`), { code: 'UPSTREAM_INVALID_STATUS' }))
      return false
    }
    const headers = endToEndResponseHeaders(raw)
    if (typeof headers !== 'object') {
      (this.#abort as (err?: Error) => void)(headers === undefined
        ? new UpstreamBodyInvalid(`the upstream's response uses a transfer coding other than chunked (${transferCoding(raw)})`)
        : Object.assign(new Error(`the upstream's response repeats ${headers} with another value, a field that may appear once`), { code: 'UPSTREAM_INVALID_HEADERS' }))
      return false
    }
    this.#resume = resume
    // No content, whatever Content-Length says (a 304 may give the 200's: RFC 9110 8.6): none is sent, as for a reply.
    if (status === 204 || status === 304) delete headers['content-length']
    headers['x-request-id'] = this.id
    const length = headers['content-length']
    const known = typeof length === 'string' ? Number(length) : undefined
    this.#buffered = known !== undefined && known <= upstream.responseBuffer
    if (this.compiled.pipeline.responseHooks.length === 0) {
      if (this.#extraHeaders !== undefined) this.#addExtra(headers)
      this.#boundUnread()
      try {
        this.res.writeHead(status, headers as Record<string, string | string[]>)
      } catch (err) {
        // Thrown into undici, it would leave the exchange unanswered: a field Node refuses is a
        // request plugin's (extraResponseHeaders), else the upstream's.
        if (this.#extraHeaders !== undefined) this.#owner.pluginFailed(this, err)
        else (this.#abort as (err?: Error) => void)(Object.assign(new Error(`the upstream's response head cannot be written: ${(err as Error).message}`), { code: 'UPSTREAM_INVALID_HEADERS', cause: err }))
        return false
      }
      this.#written = headers
      this.#flushSoon()
      return true
    }
    const state = this.#phase = new ResponseState(status, headers, true, undefined, length === undefined && closeDelimited(raw, status, this.method))
    // Writing the head is inside the guard: it throws on a bad header a plugin set.
    let pending
    try {
      pending = this.#responsePhase(state, NO_HOOK, 0)
      if (pending === undefined) { this.#respond(state, known); return true }
    } catch (err) {
      this.#phaseFailed(state, err); return false
    }
    this.#headPending = true
    pending.then(() => {
      this.#headPending = false
      if (this.#done) { this.#abandon(state); return }
      const refused = this.#refusedAfterHead
      if (refused !== undefined) { this.#abandon(state); this.#rejected(refused); return }
      const failed = this.#failAfterHead
      // The try failed meanwhile: answered without the plugins, which saw the response begin; unless a hook replaced its body.
      if (failed !== undefined && !state.replaced) { this.fail(failed); return }
      this.#respond(state, known)
      if (failed === undefined && !this.#endAfterHead) resume()
    }).catch(err => { this.#phaseFailed(state, err) })
    return false
  }

  /**
   * The response phase is over for an upstream's response: its head, then its body as it comes; or
   * the body a hook put in its place, the upstream's then read and dropped (see #drop, #closed).
   */
  #respond (state: ResponseState, known: number | undefined): void {
    if (state.replaced) {
      this.#replaced = true
      this.#sendBody(state, state.sentBody(undefined))
      return
    }
    this.#startBody(state, known)
    if (this.#endAfterHead) this.#end()
  }

  /** The upstream's body a hook replaced: read and dropped, so that its connection may serve again; past REPLY_SLICE the try is aborted. */
  #drop (chunk: Buffer): boolean {
    if ((this.#dropped += chunk.length) <= REPLY_SLICE) return true
    this.#abort?.(BODY_DROP)
    return false
  }

  onData (chunk: Buffer): boolean {
    if (this.#replaced) return this.#drop(chunk)
    const sink = this.#sink ?? this.res
    if (sink === this.res) this.bytes += chunk.length // else counted as the plugins' streams put it out (#startBody)
    if (sink.write(chunk)) return true
    // The client is not reading as fast as the upstream sends: it has clientSendMs to catch up.
    // A small response (responseBuffer) is read on regardless, so its connection goes back at once.
    if (this.#draining) return this.#buffered
    this.#draining = true
    sink.once('drain', Exchange.#onDrain)
    this.#startSendTimer()
    return this.#buffered
  }

  onComplete (): void {
    const upstream = this.compiled.upstream
    if (this.#tryStatus < 500) upstream.outcome(this.target as Target, true, this.#sentAt, false)
    upstream.end(this.target as Target)
    this.#tryEnded(undefined)
    const next = this.#retryTo
    if (next !== undefined) { this.#retryTo = undefined; if (!this.#done) this.#send(next); return }
    if (this.#headPending) this.#endAfterHead = true
    else if (!this.#replaced) this.#end()
  }

  onError (err: Error): void {
    // undici ignores what its callback throws: the exchange would be left unanswered, nothing logged.
    try {
      this.#onError(err)
    } catch (thrown) {
      this.gatewayFailed(thrown)
    }
  }

  #onError (err: Error): void {
    // A 204's or 304's Content-Length describes no body (RFC 9110 8.6), but undici, which exempts
    // only HEAD's, fails the response once it ends: it is whole (the connection is not reused).
    if (this.#answered && (this.#tryStatus === 204 || this.#tryStatus === 304) && (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') { this.onComplete(); return }
    // A 101 undici does not take for an upgrade (no Upgrade, or no Connection: upgrade) fails an
    // assertion of its own (client-h1 onUpgrade): a bad 101, as one to another protocol (see
    // onUpgrade), not a broken connection to send the request again on.
    if (this.#upgrade !== undefined && (err as { code?: string }).code === 'ERR_ASSERTION') err = badUpgrade('is no upgrade (no Upgrade, or no Connection: upgrade)', err)
    clearTimeout(this.#headersTimer)
    clearTimeout(this.#stallTimer)
    const upstream = this.compiled.upstream
    upstream.end(this.target as Target)
    this.#tryWaited() // failed or timed out: the upstream's time too, though no answer to observe
    this.#tryEnded(err === RETRY_DROP || err === BODY_DROP ? undefined : err)
    // A body stream failed (not the connection): the request is refused, the target is not to blame.
    const rejected = (this.#streamedBody !== undefined && this.#streamedBody.errored === err) || isA(err, RequestRejected)
    // undici refused what a plugin made of the request (a header value it may not carry; a body whose
    // length its stream changed, or a Content-Length it set, that do not match): no target's fault.
    // Never the client's: Node holds its body to its own Content-Length (HTTP/1.1's parser, nghttp2).
    const code = (err as { code?: string }).code
    const refused = code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'
    // A failed connection, a broken one or a timeout counts against the target, before any answer or
    // in the body of one below 500 (judged at its end: see onHeaders), unless the exchange ended it
    // (client gone, plugin failed, a status dropped for a retry: judged by that status, as any answer).
    // Once connected, passed as answered: a request can make a target hang up or stall, one that
    // cannot be connected to is down (see Upstream.outcome).
    const targetFailed = !this.#done && !rejected && !refused && err !== RETRY_DROP && err !== BODY_DROP
    if (this.#answered ? this.#tryStatus < 500 : targetFailed) upstream.outcome(this.target as Target, !targetFailed, this.#sentAt, targetFailed && this.#connected, undefined, this.#answerWaitFrom(performance.now()))
    // The body a hook put in place of the upstream's is sent whatever becomes of the try (counted above; logged if its own failure).
    if (this.#replaced) {
      if (targetFailed) this.#owner.upstreamFailed(this, err, false)
      return
    }
    if (rejected) {
      if (!this.#done) this.#rejected(err)
      return
    }
    if (refused) {
      if (!this.#done) this.#owner.pluginFailed(this, err)
      return
    }
    if (this.#done) return
    if (!this.#answered && this.#retryTo === undefined && !this.res.headersSent && code !== 'UPSTREAM_BAD_UPGRADE') {
      const failure = classifyFailure(err, this.#connected)
      if (failure !== undefined && upstream.retry.retriesFailure(failure, this.method)) this.#retryFor(retryReason(failure))
    }
    const next = this.#retryTo
    if (next !== undefined) {
      // A failed try counts and logs like a final one (this.target is still its target); a dropped retried status is no failure.
      if (err !== RETRY_DROP) this.#owner.upstreamFailed(this, err, true)
      this.#retryTo = undefined
      this.#send(next)
      return
    }
    this.#owner.upstreamFailed(this, err, false)
    // A parser error once the head arrived is the body's (a bad chunk size).
    const error = TIMEOUT_CODES.has(code ?? '') ? GatewayError.UPSTREAM_TIMEOUT
      : err instanceof UpstreamBodyInvalid || (this.#answered && err.name === 'HTTPParserError') ? GatewayError.UPSTREAM_BODY_INVALID
        : code === 'UPSTREAM_INVALID_HEADERS' || code === 'UPSTREAM_INVALID_STATUS' || (!this.#answered && malformedHead(err)) ? GatewayError.UPSTREAM_HEADERS_INVALID
          : code === 'UPSTREAM_BAD_UPGRADE' ? GatewayError.UPSTREAM_BAD_UPGRADE : GatewayError.UPSTREAM_UNREACHABLE
    // Broken with the head still held, by hooks not done yet (answered once they are) or mid-body in
    // the streams: answered without the plugins, which saw the response begin.
    if (this.#headPending) { this.#failAfterHead = error; return }
    if (this.#held !== undefined) { this.fail(error); return }
    if (!this.res.headersSent) { this.#failUpstream(error); return }
    this.cut = 'upstream_broken'
    this.#destroy(err)
  }

  /**
   * Ends the current try's wait for response headers: its seconds, added to upstreamSeconds (0 when it
   * was not waiting). Answered before the body ended, from the dispatch: the upstream chose not to
   * wait for it, and its time to answer is its own (0 would make a slow upstream that answers mid-upload look fast).
   */
  #tryWaited (): number {
    if (!this.#awaiting) return 0
    this.#awaiting = false
    const now = performance.now()
    const waited = (now - this.#answerWaitFrom(now)) / 1000
    this.upstreamSeconds += waited
    return waited
  }

  /** #waitFrom, and for a try ended unanswered mid-upload, moved on by the client's share of the upload so far. */
  #answerWaitFrom (now: number): number {
    return this.#connected && !this.#requestSent && !this.#answered ? this.#waitFrom + this.#uploadWait(now) : this.#waitFrom
  }

  /**
   * How long undici's write of the try (from onConnect) waited for the client's bytes: the span less
   * the time the target held the body back (its backpressure: not reading is its delay, not the client's).
   */
  #uploadWait (now: number): number {
    return (this.#heldFrom > 0 ? this.#heldFrom : now) - this.#writeFrom - this.#heldMs
  }

  #tryEnded (err: Error | undefined): void {
    this.compiled.pipeline.onUpstreamTryEnd?.(this, this.#tryStatus === 0 ? undefined : this.#tryStatus, err)
  }

  /**
   * A body stream refused the request (its RequestRejected reply) or could not read it (400): the
   * answer, unless the response has begun. The connection closes (HTTP/1): the rest of the body is unread.
   */
  #rejected (err: Error): void {
    const by = this.#bodyFailedBy
    if (isA(err, StreamThrew)) { this.#pluginFailedAt(by, err.thrown); return }
    const rejection = isA(err, RequestRejected)
    // A JS plugin may give it anything: new RequestRejected({ status: 413 }) has no reply.
    const reply: unknown = rejection ? err.reply : undefined
    if (rejection && (typeof reply !== 'object' || reply === null)) {
      if (this.res.headersSent) this.cut = 'plugin_failed'
      this.#pluginFailedAt(by, new TypeError(`${this.#pluginAt(by)} refused the request body with a RequestRejected without a reply { status, headers?, body? }: it takes (message, reply)`))
      return
    }
    if (this.res.headersSent || this.#held !== undefined) { this.cut = 'request_refused'; this.#destroy(err); return }
    // Response hooks still run on the upstream's answer: one phase at a time (each writes the head,
    // and hook deadlines and #phase hold one), the refusal in its place once they are done.
    if (this.#headPending) { this.#refusedAfterHead = err; return }
    const answer = rejection ? reply as PluginReply
      : errorReply(GatewayError.BAD_BODY, this.id)
    this.#reply({ ...answer, headers: { ...answer.headers, connection: 'close' } }, NO_HOOK, by)
  }

  /** Chooses the target for a retry, if one is allowed: sets #retryTo. */
  #retryFor (reason: string): boolean {
    const upstream = this.compiled.upstream
    if (this.#tries > upstream.retry.attempts || (this.#body === undefined && !this.#bodyUnsent())) return false
    ;(this.#tried ??= []).push(this.target as Target)
    this.#retryTo = upstream.retryTarget(this, this.#tried, reason)
    return this.#retryTo !== undefined
  }

  /**
   * A streamed body can be sent again only if no try took any of it (the connection failed): judged
   * by what undici was given, not the client's request, which plugins' streams read ahead. Their
   * output is then handed to the next try, what they hold included (see #requestBody).
   */
  #bodyUnsent (): boolean {
    const body = this.#streamedBody ?? this.raw
    return !body.readableDidRead && !body.destroyed
  }

  /** Stops the upstream exchange, if one is under way; its error and later events are then ignored. */
  abortUpstream (reason: Error): void {
    this.#done = true
    this.#tryWaited() // abandoned (client gone, request timeout): counted now, before finished() reads it
    this.#leaveQueue()
    this.#abort?.(reason)
  }

  /**
   * A throw of the gateway's own (a bug) while handling the request, in start() or in a later
   * continuation of it: answered 500 (or the response cut) unless already ended, then logged,
   * whatever the value (a plugin's, when logging its failure failed).
   */
  gatewayFailed (err: unknown): void {
    try {
      if (this.#done) return
      this.abortUpstream(new Error(describeThrown(err)))
      this.fail(GatewayError.INTERNAL)
    } finally {
      logThrown(this.#owner.log, 'error', 'request failed in the gateway', err, { route: this.route.name, requestId: this.id })
    }
  }

  /** Answers with a gateway error, no plugins run: for a plugin that failed, or a request out of time. */
  fail (error: GatewayErrorKind): void {
    if (this.res.headersSent) { this.#destroy(); return }
    this.#dropStreams() // a held head: the error is answered in its place
    this.#sendError(error)
  }

  /**
   * sendError, never thrown into the event handler that called it: a response Node writes not even
   * that on (never seen) is cut, its cause logged already by the caller, the exchange counted as it
   * closes. With the gateway's own fields only: over HTTP/2, a writeHead that threw (a field HTTP/2
   * cannot carry) leaves its fields set on the response, where nothing else sets any.
   */
  #sendError (error: GatewayErrorKind, close = false): void {
    const res = this.res
    if (isHttp2(this.raw)) for (const name of res.getHeaderNames()) res.removeHeader(name)
    this.#boundUnread()
    try {
      this.bytes += sendError(res, error, this.id, close)
    } catch {
      this.cut ??= error === GatewayError.PLUGIN_FAILED ? 'plugin_failed' : 'upstream_broken'
      this.#destroy()
    }
  }

  /**
   * Answers an upstream failure (502, 503, 504) through the response phase, like any answer, so
   * that what response plugins add (CORS headers, say) reaches the client with the error too.
   */
  #failUpstream (error: GatewayErrorKind): void {
    if (this.res.headersSent) { this.#destroy(); return }
    if (this.compiled.pipeline.responseHooks.length === 0 && this.#extraHeaders === undefined) { this.#sendError(error); return }
    this.#reply(errorReply(error, this.id), NO_HOOK)
  }

  /** Runs response hooks of plugins before `position` (all of them for upstream responses). */
  #responsePhase (state: ResponseState, position: number, from: number): Promise<void> | undefined {
    const hooks = this.compiled.pipeline.responseHooks
    for (let i = from; i < hooks.length; i++) {
      const hook = hooks[i] as (typeof hooks)[number]
      if (hook.position >= position) continue
      // What the head says of the body before the hook, to name the plugin that last changed it.
      const streams = state.streams.length
      const length = state.headers['content-length']
      const status = state.status
      let r
      try {
        r = hook.run(state, this)
      } catch (err) {
        throw this.#hookFailure(hook.position, err)
      }
      if (isPromise<void>(r)) {
        this.#hookPending(hook)
        return r.then(() => {
          this.#hookSettled()
          state.noteFramer(hook.position, streams, length, status)
          return this.#responsePhase(state, position, i + 1)
        }, err => {
          this.#hookSettled()
          throw this.#hookFailure(hook.position, err)
        })
      }
      state.noteFramer(hook.position, streams, length, status)
    }
    return undefined
  }

  /**
   * Writes the head (or holds it for the streams' first byte) once the response phase is over.
   * `known`: the body's length in bytes when known before it comes (a reply's; the upstream's
   * Content-Length), which is what arrives unless plugins' streams change it.
   */
  #startBody (state: ResponseState, known: number | undefined): void {
    if (this.#done) { this.#abandon(state); return }
    this.#boundUnread()
    // After the response phase: the cache, say, never stores what was decided for one request.
    if (this.#extraHeaders !== undefined) this.#addExtra(state.headers)
    const streams = state.streams
    this.#frame(state, known)
    if (streams.length === 0 && state.fromUpstream && this.#countsUpstreamBody(state, known)) streams.push(new PassThrough())
    if (streams.length === 0) {
      const headers = state.definedHeaders()
      this.res.writeHead(state.status, headers) // throws on a field Node refuses: each caller answers it as a plugin's failure
      this.#phase = undefined
      this.#written = headers
      this.#sink = this.res
      if (state.fromUpstream && !state.replaced) this.#flushSoon()
      return
    }
    // The head waits for the streams' first byte (HTTP/1.1 sends it with that byte anyway): a stream
    // that fails before it (a body that does not decode) is answered with an error, not cut.
    // Linked before they are kept (a plugin's stream that throws here is dropped with the phase's).
    const sink = state.sink((err, stream) => { this.#streamFailed(err, stream) })
    this.#phase = undefined
    this.#held = state
    this.#streaming = state
    this.#sink = sink
    ;(sink as Duplex & { [EXCHANGE]?: Exchange })[EXCHANGE] = this
    const last = streams[streams.length - 1] as Duplex & { [EXCHANGE]?: Exchange }
    last[EXCHANGE] = this
    last.on('data', Exchange.#onStreamOutput).once('end', Exchange.#onStreamEnd)
  }

  /**
   * Writes the request phase's extraResponseHeaders over a response's headers, by lower-case name as
   * response headers are (one named in another case replaces the upstream's, and the head's writer
   * finds a Content-Disposition: see disposition-first.ts); hop-by-hop ones are dropped (#hopField).
   */
  #addExtra (headers: HeaderMap): void {
    const extra = this.#extraHeaders as HeaderMap
    for (const name in extra) {
      const v = extra[name]
      if (v === undefined) continue
      // Decided before the response is known: a length there could only be another body's.
      if (framingField(name)) throw framingExtra(name)
      const lower = name.toLowerCase()
      if (pluginHopField(lower)) this.#hopField(lower, v)
      else headers[lower] = v
    }
  }

  /**
   * A hop-by-hop field a plugin set on the response (see pluginHopField), dropped: HTTP/2 refuses
   * most (a 500) and warns of Connection, HTTP/1.1 would send them as set, a plugin's Connection in
   * place of the gateway's. One naming `close` still ends an HTTP/1.1 connection after the answer
   * (Node then says so itself): a refusal that leaves the request body unread asks it.
   */
  #hopField (name: string, value: unknown): void {
    if (value === undefined) return
    if (name.length === 10 && !isHttp2(this.raw) && name.toLowerCase() === 'connection' && asksClose(value)) this.res.shouldKeepAlive = false
    this.#owner.log.debug({ route: this.route.name, requestId: this.id, header: name }, 'a hop-by-hop response header a plugin set is dropped')
  }

  /**
   * Holds the head to the body the gateway will send: it never sends more or fewer bytes than it
   * declares, whatever plugins set (a longer body would be read as the next response on the
   * connection). Sets state.declared; throws, before any byte, on what is wrong already (each
   * caller answers it as a plugin's failure): a status that is not a final one, a Content-Length
   * that is not one number, or that a body of known length does not have. Transfer-Encoding is
   * the gateway's (Node's) to write; a HEAD, 204 or 304 goes without body (and the last two
   * without Content-Length); a body known empty, which no stream may change, says Content-Length: 0.
   */
  #frame (state: ResponseState, known: number | undefined): void {
    const h = state.headers
    const status = state.status
    // A 1xx would announce another response to come (101: another protocol).
    if (!Number.isInteger(status) || status < 200 || status > 999) throw this.#misframing(state, `set res.status to ${String(status)}: a response's status is an integer from 200 to 999`)
    let disposition = false
    for (const name in h) {
      // Content-Disposition named in another case: dispositionFirst looks up the lower-case name only.
      if (name.length === 19) { disposition ||= name !== 'content-disposition' && name.toLowerCase() === 'content-disposition'; continue }
      // Transfer-Encoding among them, in any case: the gateway frames the body. The upstream's are gone already.
      if (pluginHopField(name)) { this.#hopField(name, h[name]); delete h[name]; continue }
      if (name.length === 14 && name !== 'content-length' && framingField(name)) throw this.#misframing(state, `set ${name}: header names are lower-case (content-length)`)
    }
    const contentless = status === 204 || status === 304
    if (contentless) delete h['content-length']
    const length = h['content-length']
    if (disposition && length !== undefined) lengthLast(h)
    if (length !== undefined && !isLength(length)) {
      throw this.#misframing(state, `set content-length to ${JSON.stringify(length)}: it is one decimal number`)
    }
    if (contentless || this.method === 'HEAD') { state.declared = NO_BODY; return }
    if (length === undefined) {
      // Said here, not in #reply: a response plugin's stream may yet make a body (an error page).
      // A 205 too (RFC 9110 15.3.6). Else HTTP/1.1 sends it chunked, as if a body were coming.
      if (known === 0 && state.streams.length === 0) { h['content-length'] = '0'; state.declared = 0 } else state.declared = UNCHECKED
      return
    }
    const declared = Number(length)
    if (known !== undefined && state.streams.length === 0 && declared !== known) {
      throw this.#misframing(state, `set content-length to ${declared}, but the body is ${known} bytes (a plugin that changes the body's length removes content-length)`)
    }
    state.declared = declared
  }

  /**
   * An upstream body, passed on as it comes, that must go through a stream of the gateway's, whose
   * output is counted, or dropped, as plugins' streams' is: one of unknown length a plugin gave a
   * Content-Length, or one that must not go out (a hook made a 200 a 204).
   */
  #countsUpstreamBody (state: ResponseState, known: number | undefined): boolean {
    if (state.declared !== NO_BODY) return state.declared >= 0 && known === undefined
    return this.#tryStatus !== 204 && this.#tryStatus !== 304 && this.method !== 'HEAD'
  }

  /**
   * An answer (a plugin's, the gateway's, the upstream's) that goes out before the request's body
   * is all in: what is left of it is the connection's to discard, within bounds (HTTP/2 drops it
   * with the stream: see #dropUnreadBody).
   */
  #boundUnread (): void {
    if (!this.raw.complete && !isHttp2(this.raw) && hasBody(this.raw)) boundDiscard(this.raw, this.#socket, this.res, this.#received, this.#owner.clientBodyMs)
  }

  /**
   * Node sends a written head with the first body byte. An upstream's body that comes in the same
   * read as its head (most do) goes out in the same write; one that does not (an event stream, a
   * slow first byte) would leave the client without the head meanwhile, and with no answer at all
   * if the upstream then broke. Heads still unsent once this turn of the event loop has done its
   * reads are flushed then: one setImmediate for all of them, a list through the exchanges.
   */
  #flushSoon (): void {
    if (Exchange.#unflushed === undefined) setImmediate(Exchange.#flushHeads)
    this.#nextUnflushed = Exchange.#unflushed
    Exchange.#unflushed = this
  }

  static #flushHeads (): void {
    let ex = Exchange.#unflushed
    Exchange.#unflushed = undefined
    while (ex !== undefined) {
      const next = ex.#nextUnflushed
      ex.#nextUnflushed = undefined
      if (ex.bytes === 0 && !ex.res.writableEnded && !ex.res.destroyed) ex.res.flushHeaders()
      ex = next
    }
  }

  /**
   * Frames the held head again, just before it goes out: a stream (its flush, say) or a plugin's
   * late callback may have changed it since #frame. A Content-Length set meanwhile is the one the
   * body is then held to; false if the head is wrong now (answered as the plugin's failure).
   */
  #frameHeld (): boolean {
    const state = this.#held as ResponseState
    // Not the hooks' framer's doing, but a stream's (its flush): named when the streams are one plugin's.
    if (lengthChanged(state)) {
      const plugins = new Set(state.streams.map(streamPlugin))
      state.framer = plugins.size === 1 ? [...plugins][0] as number : BY_A_STREAM
    }
    try {
      this.#frame(state, undefined)
      return true
    } catch (err) {
      this.#owner.pluginFailed(this, err)
      return false
    }
  }

  /** Writes the held head, as #frameHeld left it; false if Node refused a header a plugin set (answered as the plugin's failure). */
  #writeHeld (): boolean {
    const state = this.#held as ResponseState
    this.#held = undefined
    try {
      // A copy: what a plugin changes in the map once the head is out is not what the log says was sent.
      const headers = { ...state.definedHeaders() }
      this.res.writeHead(state.status, headers)
      this.#written = headers
      return true
    } catch (err) {
      this.#owner.pluginFailed(this, err)
      return false
    }
  }

  /** Unlinks the body streams from the client and destroys them (or those of a response phase under way): their output is not wanted any more. */
  #dropStreams (): void {
    if (this.#phase !== undefined) this.#abandon(this.#phase)
    const streams = this.#streaming?.streams
    if (streams === undefined) return
    this.#streaming = undefined
    this.#held = undefined
    ;(streams[streams.length - 1] as Duplex).off('data', Exchange.#onStreamOutput).off('end', Exchange.#onStreamEnd)
    for (const s of streams) s.destroy()
  }

  /**
   * Destroys the streams hooks gave a response that is not sent: none would otherwise end them (a
   * compress copy's claim on a cached body, an encoder, held until collected). Again once its phase
   * settles: hooks still running once the exchange is over may add more.
   */
  #abandon (state: ResponseState): void {
    if (this.#phase === state) this.#phase = undefined
    for (const s of state.streams) s.destroy()
  }

  /** A response phase failed (a hook; the head or streams it made): the plugin's failure, even once the exchange is over, its streams never sent. */
  #phaseFailed (state: ResponseState, err: unknown): void {
    this.#owner.pluginFailed(this, err)
    this.#abandon(state)
  }

  /**
   * The streams put out another length than the head declares: the plugin's failure. Before the
   * head, answered (500); past it, the response is cut, never sent longer or ended short.
   */
  #misframed (declared: number, sent: string): void {
    if (this.res.headersSent) this.cut = 'plugin_failed'
    const framer = (this.#streaming as ResponseState).framer
    this.#pluginFailedAt(framer, new Error(`${this.#pluginAt(framer)} changed the response body or its content-length, and they no longer match: the body came to ${sent} bytes, content-length says ${declared} (a plugin that changes the body's length removes content-length)`))
  }

  /**
   * A plugin's body stream failed: the plugin's failure, or the upstream's when the stream could
   * not read its body. Before the first byte out, answered (500, 502); past it, the response is cut.
   * The streams' errors once they are dropped (the client left, the response was answered or cut) are the chain's.
   */
  #streamFailed (err: unknown, stream: Duplex): void {
    if (this.#done || this.#streaming === undefined) return
    if (isA(err, UpstreamBodyInvalid)) {
      if (this.res.headersSent) this.cut = 'upstream_broken'
      this.#owner.upstreamBodyInvalid(this, err)
      return
    }
    if (this.res.headersSent) this.cut = 'plugin_failed'
    this.#pluginFailedAt(streamPlugin(stream), isA(err, StreamThrew) ? err.thrown : err)
  }

  /**
   * Answers with a reply (a plugin's, or the gateway's own through the response phase). One the
   * gateway cannot send (JS lets a plugin return anything) is that plugin's failure, never a crash.
   */
  #reply (reply: PluginReply, position: number, by = position): void {
    const problem = replyProblem(reply)
    if (problem !== undefined) { this.#pluginFailedAt(by, new TypeError(`${this.#pluginAt(by)} replied ${problem}`)); return }
    // No content in a 204 or 304 (RFC 9110 8.6, 15.3.5, 15.4.5): a body replied is not sent, nor a length.
    const contentless = reply.status === 204 || reply.status === 304
    let body
    try {
      body = reply.body === undefined || contentless ? undefined
        : typeof reply.body === 'string' || Buffer.isBuffer(reply.body) ? reply.body : JSON.stringify(reply.body) as string | undefined
    } catch (err) {
      this.#pluginFailedAt(by, new TypeError(`${this.#pluginAt(by)} replied with a body JSON cannot serialize: ${describeThrown(err)}`)); return
    }
    // Lower-cased like every HeaderMap, so later plugins and the defaults below see one name per header.
    const headers: HeaderMap = {}
    for (const name in reply.headers) headers[name.toLowerCase()] = reply.headers[name]
    headers['x-request-id'] = this.id
    if (contentless) delete headers['content-length']
    if (body !== undefined) {
      if (typeof reply.body !== 'string' && !Buffer.isBuffer(reply.body)) headers['content-type'] ??= 'application/json; charset=utf-8'
      // Known to response plugins (compression judges by it); one that changes the body removes it.
      headers['content-length'] = String(Buffer.byteLength(body))
    }
    const state = this.#phase = new ResponseState(reply.status, headers, false, Buffer.isBuffer(body) ? body : undefined)
    state.framer = by // the replying plugin (NO_HOOK: none) set the head first
    const send = () => {
      if (this.#done) this.#abandon(state)
      else this.#sendBody(state, state.sentBody(body))
    }
    try {
      const pending = this.#responsePhase(state, position, 0)
      if (pending === undefined) send()
      else pending.then(send).catch(err => { this.#replyFailed(state, err, reply, by) })
    } catch (err) {
      this.#replyFailed(state, err, reply, by)
    }
  }

  /** A reply's response phase or head failed: a field Node refuses to write, if the reply has it, is the replying plugin's (`by`). */
  #replyFailed (state: ResponseState, err: unknown, reply: PluginReply, by: number): void {
    this.#phaseFailed(state, this.#failureAt(PluginHookFailure.is(err) || unwritableField(reply.headers ?? {}) === undefined ? NO_HOOK : by, err))
  }

  /** Sends a whole body (a reply's, or one a hook put in an upstream's place): none for HEAD, 204, 304. */
  #sendBody (state: ResponseState, body: string | Buffer | undefined): void {
    this.#startBody(state, body === undefined ? 0 : Buffer.byteLength(body))
    if (state.declared === NO_BODY) body = undefined
    if (body !== undefined && this.#sink === this.res) this.bytes += Buffer.byteLength(body)
    this.#endWith(body)
  }

  /** What a hook threw or rejected with, tagged with its plugin for the log (made only on failure). */
  #hookFailure (position: number, err: unknown): PluginHookFailure {
    return PluginHookFailure.is(err) ? err : new PluginHookFailure(this.compiled.pipeline.steps[position]?.name ?? 'unknown', err)
  }

  /** `err` as the failure of the plugin at `position`, if there is one (none at NO_HOOK: the gateway's reply; -1: not known). */
  #failureAt (position: number, err: unknown): unknown {
    return this.compiled.pipeline.steps[position] === undefined ? err : this.#hookFailure(position, err)
  }

  #pluginFailedAt (position: number, err: unknown): void {
    this.#owner.pluginFailed(this, this.#failureAt(position, err))
  }

  /** What #frame throws: the failure of the plugin that last changed the framing (`what` it did). */
  #misframing (state: ResponseState, what: string): unknown {
    return this.#failureAt(state.framer, new TypeError(`${this.#pluginAt(state.framer)} ${what}`))
  }

  /** The plugin at a pipeline position, for an error message (a reply at NO_HOOK is the gateway's, or a body stream's). */
  #pluginAt (position: number): string {
    if (position === BY_A_STREAM) {
      const names = new Set((this.#streaming?.streams ?? []).map(s => this.compiled.pipeline.steps[streamPlugin(s)]?.name))
      names.delete(undefined)
      return `a body stream of plugin ${[...names].join(' or ')}`
    }
    const step = this.compiled.pipeline.steps[position]
    return step === undefined ? 'a plugin' : `plugin ${step.name}`
  }

  /**
   * Ends the response with a reply's body. A large one goes in slices, each after the client has
   * read the last (drain): clientTimeouts.send then judges a reader between writes, as on a
   * proxied body, rather than by the time it takes to read the whole body.
   */
  #endWith (body: string | Buffer | undefined): void {
    // Bytes, never a string: Node would write the head with a string's first chunk, as UTF-8, and
    // header values hold bytes (decoded as latin1: see endToEndResponseHeaders) that only latin1 writes back.
    const bytes = typeof body === 'string' ? Buffer.from(body) : body
    if (bytes === undefined || bytes.length <= REPLY_SLICE) { this.#end(bytes); return }
    const sink = this.#sink as Writable
    let at = 0
    // Called again only on drain, which a response cut or closed meanwhile never emits.
    const more = (): void => {
      clearTimeout(this.#sendTimer)
      while (at < bytes.length) {
        if (!sink.write(bytes.subarray(at, at += REPLY_SLICE))) {
          sink.once('drain', more)
          this.#startSendTimer()
          return
        }
      }
      this.#end()
    }
    more()
  }

  /**
   * Ends the response. Bytes still queued in the process (a client that stopped reading, an HTTP/2
   * window it does not open, a body a plugin's stream put out) must be read within
   * clientTimeouts.send: no other timer would close the connection (or stream) before they are.
   * As on the body, the time runs between reads: each drain restarts it. What plugins' streams
   * still hold is timed as they put it out (#onStreamOutput), and again at their end (#onStreamEnd).
   */
  #end (body?: Buffer): void {
    ;(this.#sink ?? this.res).end(body)
    // A write waiting for drain gets none once ended: this timer takes over from its.
    clearTimeout(this.#sendTimer)
    this.#armTail()
  }

  #armTail (): void {
    // Nothing left in the process (the socket took it all, as for most responses): no timer needed.
    if (this.res.writableFinished || this.res.writableLength === 0 || this.#owner.clientSendMs <= 0) return
    if (this.#tailTimer === undefined) this.res.on('drain', Exchange.#onTailDrain)
    this.#startTailTimer()
  }

  #startTailTimer (): void {
    clearTimeout(this.#tailTimer)
    this.#tailTimer = setTimeout(Exchange.#onTailTimeout, this.#owner.clientSendMs, this)
  }

  /** The client has unread bytes waiting: it has clientTimeouts.send to read them (its drain clears this). */
  #startSendTimer (): void {
    if (this.#owner.clientSendMs > 0) this.#sendTimer = setTimeout(Exchange.#onSendTimeout, this.#owner.clientSendMs, this)
  }

  #closed (): void {
    clearTimeout(this.#deadline)
    this.#hookSettled()
    clearTimeout(this.#headersTimer)
    clearTimeout(this.#stallTimer)
    clearTimeout(this.#sendTimer)
    clearTimeout(this.#tailTimer)
    clearTimeout(this.#outputTimer)
    this.#bodyRate?.stop()
    this.#done = true
    this.#leaveQueue()
    this.#freeUpload()
    if (this.#reserved > 0) this.#release()
    this.#dropStreams()
    // A body a hook replaced, still coming once the response is sent, is not waited for.
    if (!this.sentWhole) {
      // Not the client's leaving: the gateway cut its HTTP/2 connection (abuse), these streams with it.
      if (this.cut === undefined && cutByGateway(this.raw)) this.cut = 'http2_cut'
      this.abortUpstream(new Error('client closed the connection'))
    } else if (this.#replaced) this.abortUpstream(BODY_DROP)
    this.#owner.finished(this)
  }

  /**
   * The whole-request timeout: whatever is under way (plugins, body, upstream, retries) stops. It
   * does not count against the target: the budget is the route's, not a sign of the target's health.
   */
  static #onDeadline (ex: Exchange): void {
    if (ex.#done) return
    if (ex.#pendingHook !== undefined) { ex.#hookTimedOut(ex.#pendingHook, `the route's request timeout (${ex.compiled.requestTimeout} ms)`); return }
    // The upstream was never asked: the client's other uploads held its connection's slots, as at the wait's own end (queue.timeout).
    if (ex.#waitingForUpload()) { ex.#leaveQueue(); ex.#refuseUpload(); return }
    if (!ex.res.headersSent && ex.#readingBody()) { ex.#bodyLate(); return }
    const err = Object.assign(new Error(`no complete response within the route's request timeout (${ex.compiled.requestTimeout} ms)`), { code: 'REQUEST_TIMEOUT' })
    ex.abortUpstream(err)
    ex.#owner.upstreamFailed(ex, err, false)
    // Past the head, the answer is cut short: logged with the status sent.
    if (ex.res.headersSent) ex.cut = 'request_timeout'
    ex.fail(GatewayError.UPSTREAM_TIMEOUT)
  }

  /** The gateway reads a body the client has yet to finish (not one held paused for the upstream, nor one past its answer): waiting on the client. */
  #readingBody (): boolean {
    const req = this.raw
    return !this.#answered && !req.complete && (req.readableFlowing === true || this.#aheadTo > 0) && hasBody(req)
  }

  /**
   * The route's request timeout came while the client was still sending its body: its delay, not
   * the upstream's (nginx's client_body_timeout). A 408 that ends the connection (the rest of the
   * body is never read), counted and logged as a client body timeout: no 504 to page anyone.
   */
  #bodyLate (): void {
    this.cut = 'client_body_timeout'
    this.#owner.cutShort(this)
    this.abortUpstream(new Error(`the request body did not arrive within the route's request timeout (${this.compiled.requestTimeout} ms)`))
    this.#dropStreams() // a held head: the error is answered in its place
    this.#sendError(GatewayError.BODY_TIMEOUT, !isHttp2(this.raw))
  }

  /**
   * The route's request timeout (or `limit`: server.pluginTimeout) came while a plugin's hook had not finished: a 504 still (the hook
   * may be waiting on a service of its own, or on a collapsed fetch), but logged naming the plugin,
   * not the upstream, which was not contacted yet (onRequest) or has answered (onResponse).
   */
  #hookTimedOut (hook: RequestHook | ResponseHook, limit: string): void {
    const phase = (this.compiled.pipeline.requestHooks as readonly unknown[]).includes(hook) ? 'onRequest' : 'onResponse'
    this.#owner.pluginTimedOut(this, this.#hookFailure(hook.position, Object.assign(new Error(`its ${phase} did not finish within ${limit}`), { code: 'PLUGIN_TIMEOUT' })))
  }

  /**
   * An async hook is under way: named if the request times out meanwhile, and bounded by
   * server.pluginTimeout even on a route without timeouts.request. Sync hooks cost nothing here.
   */
  #hookPending (hook: RequestHook | ResponseHook): void {
    this.#pendingHook = hook
    const ms = this.compiled.pipeline.hookTimeoutMs
    if (this.#done) return
    let deadlines = Exchange.#hookDeadlines.get(ms)
    if (deadlines === undefined) Exchange.#hookDeadlines.set(ms, deadlines = new Deadlines(ms, Exchange.#onHookLate))
    this.#hookDue = deadlines.add(this)
  }

  #hookSettled (): void {
    this.#pendingHook = undefined
    if (this.#hookDue < 0) return
    Exchange.#hookDeadlines.get(this.compiled.pipeline.hookTimeoutMs)?.take(this.#hookDue)
    this.#hookDue = -1
  }

  static #onHookLate (ex: Exchange): void {
    ex.#hookDue = -1
    const hook = ex.#pendingHook
    if (ex.#done || hook === undefined) return
    try {
      ex.#hookTimedOut(hook, `server.pluginTimeout (${ex.compiled.pipeline.hookTimeoutMs} ms)`)
    } catch (err) {
      ex.gatewayFailed(err)
    }
  }

  static #onQueueTimeout (ex: Exchange): void {
    const forUpload = ex.#waitingForUpload()
    ex.#leaveQueue()
    if (forUpload) ex.#refuseUpload()
    else ex.#refuse(ex.target as Target, 'queue-timeout')
  }

  /** Waiting for one of its HTTP/2 connection's upload slots (see #mayUpload), not in a target's queue. */
  #waitingForUpload (): boolean {
    return this.#queue !== undefined && this.#queue !== this.target?.waiting
  }

  /** Fails the try as undici's own headers timeout would, so retries and the 504 follow the same path. */
  /**
   * A try's first 1xx, where undici times the response (timeouts.response of 10 s or more): undici
   * restarts its timer on every 1xx, so an upstream sending them for ever (102 Processing, 103) would
   * never time out. The gateway's own timer then cuts the try `response` after its first 1xx at most.
   */
  #informational (): void {
    if (this.#responseMs > 0 || this.#informationalTry === this.#tries || this.compiled.responseTimeout === 0 || this.#done) return
    this.#informationalTry = this.#tries
    this.#headersTimer = setTimeout(Exchange.#onHeadersTimeout, this.compiled.responseTimeout, this)
  }

  static #onHeadersTimeout (ex: Exchange): void {
    ex.#abort?.(Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
  }

  /** The client's body timer is held meanwhile too: undici's pause reaches the request (see #onBodyUnread). */
  static #onBodyHeld (this: Readable): void {
    const ex = (this as Readable & { [EXCHANGE]: Exchange })[EXCHANGE]
    if (ex.#connected && !ex.#requestSent && ex.#heldFrom === 0) ex.#heldFrom = performance.now()
    const idleMs = ex.compiled.bodyTimeout
    // Answered: the upstream may well read no more (an early 413); its answer ends the exchange.
    if (ex.#done || ex.#answered || ex.#abort === undefined) return
    clearTimeout(ex.#stallTimer)
    if (idleMs > 0) ex.#stallTimer = setTimeout(Exchange.#onStall, idleMs, ex)
  }

  static #onBodyTaken (this: Readable): void {
    const ex = (this as Readable & { [EXCHANGE]: Exchange })[EXCHANGE]
    clearTimeout(ex.#stallTimer)
    if (ex.#heldFrom > 0) { ex.#heldMs += performance.now() - ex.#heldFrom; ex.#heldFrom = 0 }
  }

  static #onStall (ex: Exchange): void {
    // The rest of the body is never read: an HTTP/1.1 connection closes once the answer is out
    // (HTTP/2 closes the stream: see #dropUnreadBody).
    if (!isHttp2(ex.raw)) {
      const socket = ex.#socket
      ex.res.shouldKeepAlive = false
      ex.res.once('finish', () => socket.destroy())
    }
    ex.#abort?.(Object.assign(new Error(`the upstream took none of the request body for ${ex.compiled.bodyTimeout} ms (idle timeout)`), { code: 'UPSTREAM_SEND_TIMEOUT' }))
  }

  /** A client timeout: the connection is closed, and with it the upstream try (see #closed). */
  #cutShort (cut: Cut): void {
    if (this.#done) return
    this.cut = cut
    this.#owner.cutShort(this)
    this.#destroy()
  }

  /**
   * Ends the response unfinished: HTTP/2 resets only the stream, given an error (`err`) so that it
   * says INTERNAL_ERROR (a bare destroy() says NO_ERROR, which reads as a complete response). HTTP/1.x
   * closes the connection; reset (RST) when the body sent has no other end than the connection's
   * (HTTP/1.0, or neither Content-Length nor chunked), which a FIN would end as if whole, for a
   * client or a cache. Only then: a reset drops what the kernel still holds to send, earlier
   * pipelined answers included, which a framed body's FIN leaves whole.
   */
  #destroy (err = STREAM_CUT): void {
    if (isHttp2(this.raw)) { this.res.destroy(err); return }
    const socket = this.res.socket
    // Queued behind an earlier answer on a pipelined connection, it has no socket yet: Node 24 would
    // send what it holds when its turn comes and keep the connection open. Closed at that turn
    // instead, none of it sent (a reset would drop the earlier answers' bytes still queued).
    if (socket === null) this.res.once('socket', closeSocket)
    else if (this.res.headersSent && this.#closeDelimited()) resetConnection(socket)
    this.res.destroy()
  }

  /** Whether the body sent ends with the connection only: neither chunked nor a Content-Length. */
  #closeDelimited (): boolean {
    return !this.res.chunkedEncoding && this.#written?.['content-length'] === undefined && this.res.getHeader('content-length') === undefined
  }

  static #onSendTimeout (ex: Exchange): void {
    ex.#cutSlowReader()
  }

  /** Sent whole by now, the exchange may still be open for the request's body (HTTP/2): that is not a slow reader. */
  static #onTailTimeout (ex: Exchange): void {
    if (!ex.res.writableFinished) ex.#cutSlowReader()
  }

  /**
   * A reader past clientTimeouts.send, over HTTP/1.1 reset, not closed: a closed socket keeps the
   * bytes its reader never took (FIN-WAIT-1) for as long as the client keeps its window shut, and a
   * hostile client can pile those up (nginx: reset_timedout_connection). Reset first: the cut is
   * recorded before the socket's 'close' comes. Over HTTP/2 the stream alone is reset, and the
   * connection too if the client reads none of it (see resetIfUnread).
   */
  #cutSlowReader (): void {
    if (!this.#done) {
      if (isHttp2(this.raw)) resetIfUnread((this.raw as unknown as Http2ServerRequest).stream.session, this.#owner.clientSendMs)
      else resetConnection(this.#socket)
    }
    this.#cutShort('client_send_timeout')
  }

  static #onTailDrain (this: ServerResponse): void {
    (this as ServerResponse & { [EXCHANGE]: Exchange })[EXCHANGE].#startTailTimer()
  }

  /** The last body stream's output: the head first, if held; the client's backpressure pauses the stream. */
  static #onStreamOutput (this: Duplex, chunk: unknown): void {
    const ex = (this as Duplex & { [EXCHANGE]: Exchange })[EXCHANGE]
    if (ex.#held !== undefined && !ex.#frameHeld()) return
    const declared = (ex.#streaming as ResponseState).declared
    if (declared === NO_BODY) return
    // A string (a stream given an encoding) goes out as UTF-8, as write() sends it; an object-mode stream may put out anything.
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : isA(chunk, Uint8Array) ? chunk.byteLength : -1
    if (size < 0) { ex.#streamFailed(new TypeError(`a response body stream put out ${chunk === null || typeof chunk === 'object' ? 'an object' : `a ${typeof chunk}`}, not a Buffer or a string`), this); return }
    if (declared !== UNCHECKED && ex.bytes + size > declared) { ex.#misframed(declared, `more than ${declared}`); return }
    if (ex.#held !== undefined && !ex.#writeHeld()) return
    ex.bytes += size
    if (!ex.res.write(chunk) && !this.isPaused()) {
      this.pause()
      ex.res.once('drain', Exchange.#onClientDrain)
      // Timed here: the send timer follows the first stream's backpressure (onData), which stops at
      // the upstream's end, and the tail timer only what the client was sent by then (#end), while
      // the streams may still hold the body (an encoder's, a buffered response's whole).
      if (ex.#owner.clientSendMs > 0) ex.#outputTimer = setTimeout(Exchange.#onSendTimeout, ex.#owner.clientSendMs, ex)
    }
  }

  static #onStreamEnd (this: Duplex): void {
    const ex = (this as Duplex & { [EXCHANGE]: Exchange })[EXCHANGE]
    if (ex.#held !== undefined && !ex.#frameHeld()) return
    const declared = (ex.#streaming as ResponseState).declared
    if (declared >= 0 && ex.bytes !== declared) { ex.#misframed(declared, String(ex.bytes)); return }
    if (ex.#held !== undefined && !ex.#writeHeld()) return
    ex.res.end()
    ex.#armTail()
  }

  static #onClientDrain (this: ServerResponse): void {
    const ex = (this as ServerResponse & { [EXCHANGE]: Exchange })[EXCHANGE]
    clearTimeout(ex.#outputTimer)
    const streams = ex.#streaming?.streams
    streams?.[streams.length - 1]?.resume()
  }

  static #onDrain (this: Writable): void {
    const ex = (this as Writable & { [EXCHANGE]: Exchange })[EXCHANGE]
    clearTimeout(ex.#sendTimer)
    ex.#draining = false
    if (!ex.#buffered) (ex.#resume as () => void)()
  }

  /**
   * The gateway reads the request's body (it flows: read whole, or taken by undici or a plugin's
   * stream): from now until it pauses, a client that sends none of it for clientTimeouts.body is
   * cut; the rate watch starts. Not before: a request waiting for a connection, held by a plugin, or
   * awaiting its 100 Continue is the gateway's delay. Once answered, the socket's timer is Node's.
   */
  static #onBodyRead (this: IncomingMessage): void {
    const ex = (this as IncomingMessage & { [EXCHANGE]: Exchange })[EXCHANGE]
    if (this.complete || ex.#done || ex.res.writableFinished) return
    const { clientBodyMs, clientMinBodyRate } = ex.#owner
    if (clientBodyMs > 0) ex.#timeBody(clientBodyMs)
    if (clientMinBodyRate > 0) ex.#bodyRate ??= new BodyRateWatch(this, clientBodyMs, clientMinBodyRate, () => ex.#cutShort('client_body_too_slow'))
  }

  /** The gateway holds the body back (its reader's backpressure: the upstream's, a plugin stream's): the client is not to blame meanwhile. */
  static #onBodyUnread (this: IncomingMessage): void {
    const ex = (this as IncomingMessage & { [EXCHANGE]: Exchange })[EXCHANGE]
    if (ex.#owner.clientBodyMs > 0 && !this.complete && !ex.res.writableFinished) ex.#timeBody(0)
  }

  /**
   * The request's timer, as req.setTimeout() sets it: over HTTP/2 the stream's (the socket is the
   * whole session's); over HTTP/1.1 the kept socket's (req.socket may be null: see #socket).
   */
  #timeBody (ms: number): void {
    if (isHttp2(this.raw)) this.raw.setTimeout(ms); else this.#socket.setTimeout(ms)
  }

  static #onBodyTimeout (this: IncomingMessage): void {
    const ex = (this as IncomingMessage & { [EXCHANGE]: Exchange })[EXCHANGE]
    // A body still arriving after the answer (Node reads what is left to keep the connection): closed too.
    if (ex.#done) ex.#socket.destroy()
    else ex.#cutShort('client_body_timeout')
  }

  /**
   * The request's push: Node's parser (HTTP/1.1) and compatibility layer (HTTP/2) push each body
   * chunk into the request as it arrives, read or not. A shared function, not a closure per request.
   * HTTP/2's compatibility layer pushes the end when the stream closes too, reset before its body
   * ended (RST_STREAM without END_STREAM, from the client or the gateway): only the stream's own end
   * (END_STREAM) is pushed. Without it the request is destroyed, not ended (nor left open: a read
   * of a closed stream's request trips an assertion of Node's), and undici aborts the upstream
   * request rather than end its chunked body as if whole. A client's NO_ERROR reset is one Node's
   * http2 ends the stream on too, but `aborted` (before the response ended).
   */
  static #onBodyChunk (this: IncomingMessage, chunk: Buffer | null, encoding?: BufferEncoding): boolean {
    const ex = (this as IncomingMessage & { [EXCHANGE]: Exchange })[EXCHANGE]
    if (chunk !== null) ex.#received += chunk.length
    else if (isHttp2(this)) {
      const stream = (this as unknown as Http2ServerRequest).stream
      if (!stream.readableEnded || stream.aborted) { this.destroy(); return false }
    }
    const more = READABLE_PUSH.call(this, chunk, encoding)
    // Not from within Node's push: what follows may dispatch requests (this one, others waiting for its upload slot).
    if (chunk === null) {
      ex.#arriving = false
      if (ex.#aheadTo > 0 || ex.#uploads !== undefined || ex.#queue !== undefined) process.nextTick(Exchange.#onBodyIn, ex)
    } else if (ex.#aheadTo > 0 && ex.#received >= ex.#aheadTo) {
      ex.#aheadTo = 0
      process.nextTick(Exchange.#onAhead, ex)
    }
    return more
  }

  static #onBodyArrived (this: IncomingMessage): void {
    const ex = (this as IncomingMessage & { [EXCHANGE]: Exchange })[EXCHANGE]
    ex.#bodyRate?.stop()
    // Once answered, the socket's timer is Node's keep-alive timeout: not ours to clear.
    if (!ex.res.writableFinished) ex.#timeBody(0)
  }

  /**
   * HTTP/2: a request body nobody reads any more (undici drops the rest once the upstream has
   * answered, a body stream that refused it unpipes it) leaves its stream paused with data unread,
   * and such a stream never closes, nor its response (nor the exchange). Once the answer is sent,
   * the rest is not wanted: the stream is closed, RST_STREAM NO_ERROR telling a client still
   * sending to stop (RFC 9113 8.1).
   */
  static #dropUnreadBody (this: IncomingMessage | Duplex): void {
    const ex = (this as (IncomingMessage | Duplex) & { [EXCHANGE]: Exchange })[EXCHANGE]
    const stream = (ex.raw as unknown as Http2ServerRequest).stream
    if (stream.writableFinished && !stream.readableEnded) stream.destroy()
  }

  // One listener shared by every response (not a closure per request): the response knows its exchange.
  static #onResponseClose (this: ServerResponse): void {
    (this as ServerResponse & { [EXCHANGE]: Exchange })[EXCHANGE].#closed()
  }
}

/** How long the ends of a WebSocket closed for a reload or a shutdown have to finish the frames in progress and answer the close frames before both connections are cut. */
const WEBSOCKET_CLOSE_GRACE_MS = 1_000

/**
 * Whether a 101 (undici's raw [name, value, ...]) switched to a WebSocket (its Upgrade, whatever the
 * request offered) with no extension but permessage-deflate: framing as RFC 6455 has it.
 */
function knownFraming (raw: ReadonlyArray<Buffer | string>): boolean {
  let websocket = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase()
    if (name === 'upgrade') websocket = String(raw[i + 1]).trim().toLowerCase() === 'websocket'
    if (name !== 'sec-websocket-extensions') continue
    for (const ext of String(raw[i + 1]).split(',')) if ((ext.split(';')[0] as string).trim().toLowerCase() !== 'permessage-deflate') return false
  }
  return websocket
}

/** The cuts that close a WebSocket with close frames: a reload's 1012 (Service Restart), a shutdown's 1001 (Going Away). */
const PLANNED_CLOSES: Partial<Record<Cut, PlannedClose>> = {
  reload: { code: 1012, reason: 'config reloaded' },
  shutdown: { code: 1001, reason: 'gateway shutting down' }
}
