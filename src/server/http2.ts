import { constants, createServer, type Http2Server, type Http2ServerRequest, type Http2Session, type SecureServerOptions, type ServerHttp2Stream, type Settings } from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Server, ServerOpts, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { GatewayConfig } from '../config/schema.ts'
import { destroyAfterLinger } from '../errors.ts'
import { WaitQueue, type Linked } from '../upstreams/wait-queue.ts'
import { clientTimeouts } from './client-timeouts.ts'

type ServerConfig = GatewayConfig['server']

/** server.http2 with its defaults filled in; undefined when HTTP/2 is off. */
export interface Http2Limits {
  /** HTTP/2 (ALPN h2) on the TLS listener. */
  readonly tls: boolean
  readonly h2c: { readonly host: string, readonly port: number } | undefined
  readonly maxConcurrentStreams: number
  readonly maxHeaderListSize: number
  /** Requests of a connection whose body is still arriving that may hold or wait for an upstream connection (see Uploads). */
  readonly maxStreamingUploads: number
  readonly rapidReset: Bucket
  readonly settingsFlood: Bucket
  /** server.clientTimeouts.headers: the time a new connection has to send its preface (see armPreface). */
  readonly prefaceMs: number
}

interface Bucket { readonly burst: number, readonly perSecond: number }

const HTTP2_DEFAULTS = {
  maxConcurrentStreams: 100,
  maxHeaderListSize: 16_384,
  maxStreamingUploads: 8,
  rapidReset: { burst: 100, perSecond: 10 },
  settingsFlood: { burst: 20, perSecond: 2 }
} as const

/**
 * How often sessions with streams open are checked for one nghttp2 has ended itself (see
 * nghttp2Done; Node 20 gives no event for it): streams on it may wait that long before they abort.
 */
const DONE_CHECK_MS = 1_000

/** Why a connection was cut: the label of portcullis_http2_connections_cut_total. */
export type Http2Cut = 'rapid_reset' | 'settings_flood' | 'header_list_size'

export function http2Limits (server: ServerConfig): Http2Limits | undefined {
  const c = server.http2
  if (c === undefined || c === false) return undefined
  const o = c === true ? {} : c
  return {
    tls: server.tls !== undefined,
    h2c: o.h2c === undefined ? undefined : { host: o.h2c.listen.host ?? '0.0.0.0', port: o.h2c.listen.port },
    maxConcurrentStreams: o.maxConcurrentStreams ?? HTTP2_DEFAULTS.maxConcurrentStreams,
    maxHeaderListSize: o.maxHeaderListSize ?? HTTP2_DEFAULTS.maxHeaderListSize,
    maxStreamingUploads: o.maxStreamingUploads ?? HTTP2_DEFAULTS.maxStreamingUploads,
    rapidReset: { ...HTTP2_DEFAULTS.rapidReset, ...o.rapidReset },
    settingsFlood: { ...HTTP2_DEFAULTS.settingsFlood, ...o.settingsFlood },
    prefaceMs: clientTimeouts(server).headers
  }
}

/**
 * Whether a request came on an HTTP/2 stream. Not its version alone: Node's HTTP/1 parser takes an
 * `HTTP/2.0` request line too (major 2, no stream), which the gateway answers with 505.
 */
export function isHttp2 (req: { readonly httpVersionMajor: number }): boolean {
  return req.httpVersionMajor === 2 && (req as { readonly stream?: unknown }).stream !== undefined
}

/**
 * The fields a header list of `size` bytes can hold (32 bytes or more each, RFC 9113 6.5.2), and
 * the 4 pseudo-headers. Node's default, 128, would be tighter than the size (browsers send each
 * cookie as a field of its own). Before the client acknowledges SETTINGS this count is Node's only
 * bound on a list (besides maxSessionMemory): a value indexed once and referenced thousands of
 * times built megabytes of header objects per stream; 516 references still 2 MB, hence the cut of
 * such a session at its first list so built (see Http2Connections.checkHeaderList).
 */
const headerPairs = (size: number): number => Math.ceil(size / 32) + 4

/**
 * How many times the bytes a connection has sent its header lists over maxHeaderListSize may decode
 * to before it acknowledges SETTINGS (see checkHeaderList). Literals decode to at most 8/5 of their
 * bytes (Huffman's shortest code is 5 bits); references to HPACK's table, to 400 times theirs.
 */
const AMPLIFICATION = 4
/**
 * And how much such lists may come to in all (1 MiB at the default 16 KiB): bytesRead counts frames
 * nghttp2 ignores (an unknown type, without limit), with which a client paid the ratio above.
 */
const OVERSIZED_LISTS = 64

/** An HTTP/2 header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 6.5.2: name, value and 32 per field), from Node's raw [name, value, ...]. */
export function headerListSize (raw: readonly string[]): number {
  let size = 0
  for (let i = 0; i < raw.length; i += 2) size += (raw[i] as string).length + (raw[i + 1] as string).length + 32
  return size
}

/** What both HTTP/2 listeners are created with (and what a reload changes for new connections: see Http2Connections.update). */
export function http2ServerOptions (limits: Http2Limits): Pick<SecureServerOptions, 'settings' | 'maxHeaderListPairs'> {
  return { settings: settings(limits), maxHeaderListPairs: headerPairs(limits.maxHeaderListSize) }
}

const settings = (limits: Http2Limits): Settings => ({ maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize })

/**
 * A session's token buckets (rapid reset, settings flood): tokens left and when they were last
 * counted; its open streams, those whose response is not all sent, whether it is being ended (see
 * endOnceAnswered), the socket under it (see socketOf), its idle timeout and timer (see armIdle), and
 * its preface timer (see armPreface).
 */
interface Allowance {
  resets: number, resetsAt: number, settings: number, settingsAt: number, cut: boolean, streams: number, unanswered: number, ending: boolean,
  socket: Socket | undefined, idleMs: number, idle: NodeJS.Timeout | undefined, preface: NodeJS.Timeout | undefined, uploads: Uploads | undefined,
  /** The size of its header lists over maxHeaderListSize before it acknowledged SETTINGS (see checkHeaderList). */
  oversized: number
}
const ALLOWANCE = Symbol('allowance')
type GuardedSession = Http2Session & { [ALLOWANCE]: Allowance, [GUARD]: Http2Connections }
const GUARD = Symbol('guard')

/** The tokens of a bucket that had `tokens` at `at`, refilled until `now`. */
function refill (tokens: number, at: number, now: number, b: Bucket): number {
  return Math.min(b.burst, tokens + (now - at) * b.perSecond / 1000)
}

/**
 * The connections of one listener that speaks HTTP/2 (the TLS listener with ALPN, or the h2c one):
 * guards each session against rapid reset and settings floods, sends GOAWAY to every session on
 * shutdown, and cuts every connection (HTTP/1.1 ones too) at the shutdown deadline.
 */
export class Http2Connections {
  readonly #sessions = new Set<Http2Session>()
  readonly #sockets = new Set<Socket>()
  readonly #server: Server & { updateSettings (s: Settings): void }
  readonly #onCut: (reason: Http2Cut, session: Http2Session) => void
  readonly #onTimeout: (kind: 'client_headers') => void
  #limits: Http2Limits
  #idleMs: number
  /** After goaway(): a session that connects now is told to go away at once. */
  #closing = false
  /** While sessions are open: drops those nghttp2 is done with (see dropDone). */
  #doneCheck: NodeJS.Timeout | undefined

  /** `onTimeout`: a client timeout to count (portcullis_timeouts_total), as the HTTP/1.1 listener's. */
  constructor (server: Server, limits: Http2Limits, idleMs: number, onCut: (reason: Http2Cut, session: Http2Session) => void, onTimeout: (kind: 'client_headers') => void) {
    this.#server = server as Server & { updateSettings (s: Settings): void }
    this.#limits = limits
    this.#idleMs = idleMs
    this.#onCut = onCut
    this.#onTimeout = onTimeout
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
      // Ended by the gateway (a session closed, then destroyed, ends its socket and no more): a
      // client that keeps its side open does not keep the connection.
      socket.once('finish', () => destroyAfterLinger(socket))
    })
    server.on('session', (session: Http2Session) => {
      const s = session as GuardedSession
      const now = performance.now()
      s[GUARD] = this
      const a: Allowance = s[ALLOWANCE] = {
        resets: this.#limits.rapidReset.burst, resetsAt: now, settings: this.#limits.settingsFlood.burst, settingsAt: now, cut: false, streams: 0, unanswered: 0, ending: false,
        socket: socketOf(session), idleMs: this.#idleMs, idle: undefined, preface: undefined, uploads: undefined, oversized: 0
      }
      this.#sessions.add(session)
      this.#doneCheck ??= setInterval(dropDone, DONE_CHECK_MS, this.#sessions).unref()
      session.once('close', () => {
        this.#sessions.delete(session)
        clearTimeout(a.idle)
        clearTimeout(a.preface)
        if (this.#sessions.size > 0) return
        clearInterval(this.#doneCheck)
        this.#doneCheck = undefined
      })
      session.on('remoteSettings', onRemoteSettings)
      armIdle(s)
      armPreface(s, this.#limits.prefaceMs)
      session.destroy = destroyOrReset
      if (this.#closing) session.close()
    })
    server.on('stream', onStream)
  }

  /** A reload's limits (the buckets' for every connection, SETTINGS and the field cap for those opened from now on) and idle timeout (for those opened from now on). */
  update (limits: Http2Limits, idleMs: number): void {
    const raised = limits.maxStreamingUploads > this.#limits.maxStreamingUploads
    this.#limits = limits
    this.#idleMs = idleMs
    this.#server.updateSettings(settings(limits))
    // Node reads each new session's options, the field cap too, from this object (updateSettings
    // writes its `settings` there): a larger maxHeaderListSize needs more fields.
    const options = nodeField<{ maxHeaderListPairs?: number }>(this.#server, 'options')
    if (options !== undefined) options.maxHeaderListPairs = headerPairs(limits.maxHeaderListSize)
    // Waiters that now fit go at once, not when a slot ends or their queue.timeout does.
    if (raised) for (const s of this.#sessions) (s as GuardedSession)[ALLOWANCE].uploads?.admit()
  }

  /** Sessions open now. */
  get sessions (): number { return this.#sessions.size }

  /** server.http2.maxStreamingUploads, as the last reload set it (open connections included). */
  get maxStreamingUploads (): number { return this.#limits.maxStreamingUploads }

  /**
   * A header list over maxHeaderListSize, before the client acknowledged the SETTINGS that announce
   * it (Node then checks only the count of fields: see headerPairs). Sent as it is (a browser's first
   * requests with a large cookie), only its stream is refused (431, by the Runtime): cutting the
   * connection cut the client's other first requests too. Built of HPACK references (megabytes from a
   * few KB), it cuts the connection at once, the rest of what it sent not decoded: once such lists
   * come to more than AMPLIFICATION times every byte the connection has read (a whole read, so
   * this frame's and more), or to more than OVERSIZED_LISTS lists of the size (a browser's few are
   * refused all the same). Synchronously: the one header list decoded is the cost.
   */
  checkHeaderList (session: Http2Session, raw: readonly string[]): void {
    if (!session.pendingSettingsAck) return
    const size = headerListSize(raw)
    if (size <= this.#limits.maxHeaderListSize) return
    const a = (session as GuardedSession)[ALLOWANCE]
    a.oversized += size
    if (a.oversized > AMPLIFICATION * (a.socket?.bytesRead ?? 0) || a.oversized > OVERSIZED_LISTS * this.#limits.maxHeaderListSize) this.#cut(session, 'header_list_size', true)
  }

  /** GOAWAY to every session: no new streams; those in flight finish, then the session closes. */
  goaway (): void {
    this.#closing = true
    for (const s of this.#sessions) {
      s.close()
      endOnceAnswered(s as GuardedSession)
    }
  }

  get closing (): boolean { return this.#closing }

  /** The shutdown deadline: every connection is cut, whatever it carries. */
  destroy (): void {
    for (const s of this.#sockets) s.destroy()
  }

  /** Takes one token of `kind` from `session`'s allowance; with none left, the session is cut. */
  spend (session: Http2Session, kind: 'resets' | 'settings'): void {
    const a = (session as GuardedSession)[ALLOWANCE]
    const now = performance.now()
    if (kind === 'resets') {
      a.resets = refill(a.resets, a.resetsAt, now, this.#limits.rapidReset) - 1
      a.resetsAt = now
      if (a.resets < 0) this.#cut(session, 'rapid_reset')
    } else {
      a.settings = refill(a.settings, a.settingsAt, now, this.#limits.settingsFlood) - 1
      a.settingsAt = now
      if (a.settings < 0) this.#cut(session, 'settings_flood')
    }
  }

  /** A session that sent no preface in time (see armPreface): counted as HTTP/1.1's request head sent too late, then closed as idle. */
  prefaceTimedOut (session: GuardedSession): void {
    this.#onTimeout('client_headers')
    onIdle(session)
  }

  /** `now`: at once, from within the frame's callback (its GOAWAY may be lost); else once the GOAWAY can be sent. */
  #cut (session: Http2Session, reason: Http2Cut, now = false): void {
    const a = (session as GuardedSession)[ALLOWANCE]
    if (a.cut) return
    a.cut = true
    this.#onCut(reason, session)
    // Not from within the frame's own callback (nghttp2 is still reading): a GOAWAY sent there is lost.
    if (now) cutSession(session); else setImmediate(cutSession, session)
  }
}

/** A request waiting for one of its connection's upload slots (see Uploads). */
export interface UploadWaiter extends Linked<UploadWaiter> {
  /** A slot is its now (counted in `uploads`). */
  uploadAdmitted (uploads: Uploads): void
}

/** Requests of every connection of this process waiting for an upload slot. */
let waitingForUploads = 0

/** Requests waiting for an upload slot now, all connections together (portcullis_http2_uploads_waiting). */
export const uploadsWaiting = (): number => waitingForUploads

/** A connection's queue for its upload slots, counted in waitingForUploads whichever way its waiters leave (shift() removes too). */
class UploadQueue extends WaitQueue<UploadWaiter> {
  override push (w: UploadWaiter): void {
    super.push(w)
    waitingForUploads++
  }

  override remove (w: UploadWaiter): void {
    super.remove(w)
    waitingForUploads--
  }
}

/**
 * A connection's requests whose body is still arriving from the client while they hold, or wait
 * for, an upstream connection: at most server.http2.maxStreamingUploads. An HTTP/1.1 connection
 * carries one at a time; without this, one HTTP/2 connection's 100 streams, a byte now and then
 * each, took a target's every connection.
 */
export class Uploads {
  held = 0
  readonly waiting: WaitQueue<UploadWaiter> = new UploadQueue()
  readonly #guard: Http2Connections

  constructor (guard: Http2Connections) { this.#guard = guard }

  /** Takes a slot if one is free (else the caller waits in `waiting`). */
  take (): boolean {
    if (this.held >= this.#guard.maxStreamingUploads) return false
    this.held++
    return true
  }

  /** Gives a slot back: the requests waiting longest take what is free. */
  give (): void {
    this.held--
    this.admit()
  }

  /** The requests waiting longest take the slots free (after a give, or a reload that raised maxStreamingUploads). */
  admit (): void {
    while (this.held < this.#guard.maxStreamingUploads) {
      const w = this.waiting.shift()
      if (w === undefined) return
      this.held++
      w.uploadAdmitted(this)
    }
  }
}

/** The upload slots of the HTTP/2 connection `req` came on; undefined on one the gateway does not guard (gone). */
export function uploadsOf (req: IncomingMessage): Uploads | undefined {
  const session = (req as unknown as Http2ServerRequest).stream.session as GuardedSession | undefined
  const a = session?.[ALLOWANCE]
  return a === undefined ? undefined : (a.uploads ??= new Uploads((session as GuardedSession)[GUARD]))
}

// Shared listeners (no closure per stream). A stream the gateway destroys itself (a cut, a failed
// upstream) is already destroyed when 'aborted' fires; one the client reset is not.
function onAborted (this: ServerHttp2Stream): void {
  const session = this.session as GuardedSession | undefined
  if (!this.destroyed && session !== undefined) session[GUARD].spend(session, 'resets')
}

function onStream (stream: ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]): void {
  const session = stream.session as GuardedSession
  const a = session[ALLOWANCE]
  a.streams++
  a.unanswered++
  clearTimeout(a.idle)
  let answered = false
  const done = () => {
    if (answered) return
    answered = true
    a.unanswered--
    if (session[GUARD].closing) endOnceAnswered(session)
  }
  stream.once('finish', done)
  stream.once('close', () => {
    if (--a.streams === 0) armIdle(session)
    done()
  })
  stream.once('aborted', onAborted)
  session[GUARD].checkHeaderList(session, raw)
}

/**
 * Stopping (or idle), a session whose responses are all sent is destroyed after a linger: Node's
 * close() waits for its streams to close, which a client that does not read its answers (nor end
 * its side) never lets happen, so one idle client held every stop for the whole shutdownTimeout. The
 * linger lets what was sent reach the client first.
 */
function endOnceAnswered (session: GuardedSession): void {
  const a = session[ALLOWANCE]
  if (a.unanswered > 0 || a.ending) return
  a.ending = true
  destroyAfterLinger(session)
}

/**
 * Idle sessions end like idle keep-alive connections (server.keepAliveTimeout, as it was when the
 * session began), counted from its start or the end of its last stream. One with a stream open is
 * not idle, only quiet (a slow upstream). Not Node's session.setTimeout: each SETTINGS frame restarts
 * it (the 'remoteSettings' listener has Node read them), so a client sending one now and then kept
 * an idle connection for ever.
 */
function armIdle (session: GuardedSession): void {
  const a = session[ALLOWANCE]
  // A stream closed by the session's destroy(): the timer would hold the session until it fired.
  if (!session.destroyed) a.idle = setTimeout(onIdle, a.idleMs, session).unref()
}

/**
 * A session must send its preface (the client's SETTINGS: 'remoteSettings') within
 * clientTimeouts.headers, as an HTTP/1.1 connection its first request head: one that sent nothing
 * (h2c, or TLS after ALPN h2) was held until the idle timeout (72 s by default). Then it is idle.
 */
function armPreface (session: GuardedSession, ms: number): void {
  session[ALLOWANCE].preface = setTimeout(onPrefaceTimeout, ms, session).unref()
}

function onPrefaceTimeout (session: GuardedSession): void {
  session[GUARD].prefaceTimedOut(session)
}

function onIdle (session: GuardedSession): void {
  session.close()
  // close() also waits for a stream whose headers never ended (HEADERS without END_HEADERS, or cut
  // short), which nghttp2 opened but JS never sees: such a client held its connection for ever.
  endOnceAnswered(session)
}

/**
 * The socket under a session (TLS or TCP), under Node's own symbol for it: the session's `socket`
 * is a proxy, which forbids destroy() and is unbound once the session is destroyed.
 */
function socketOf (session: Http2Session): Socket | undefined {
  return nodeField<Socket>(session, 'socket')
}

/** A field of Node's `of` (a session, a server) under Node's own symbol described `description`. */
function nodeField<T> (of: object, description: string): T | undefined {
  const key = Object.getOwnPropertySymbols(of).find(k => k.description === description)
  return key === undefined ? undefined : (of as Record<symbol, T | undefined>)[key]
}

/**
 * Whether nghttp2 is done with a session it has ended itself, with a GOAWAY for a client's protocol
 * error (DATA on stream 0, a PING or SETTINGS of a bad length, a frame over the size): it wants
 * neither to read nor to write (its handle has no pending data), when the connection should be
 * dropped. Node 20 leaves it: no event, not even closed, its socket no longer read, so the client's
 * leaving went unseen and the streams' upstream requests ran on. (Node 24 destroys it itself.)
 */
function nghttp2Done (session: Http2Session): boolean {
  return nodeField<{ hasPendingData (): boolean }>(session, 'kHandle')?.hasPendingData() === false
}

/** Destroys the sessions with streams open that nghttp2 is done with: their streams abort (499), their upstream requests with them. */
function dropDone (sessions: ReadonlySet<Http2Session>): void {
  for (const s of sessions) {
    if (!s.destroyed && (s as GuardedSession)[ALLOWANCE].streams > 0 && nghttp2Done(s)) s.destroy()
  }
}

/**
 * Every destroy() of a session, the gateway's or Node's (idle, shutdown, a client's GOAWAY, a
 * session error). Node ends the socket only once the write under way is done, which a client that
 * reads nothing never lets happen: its connection, and the megabytes queued in the kernel for it,
 * stayed for ever. One not closed a linger later is reset.
 */
function destroyOrReset (this: GuardedSession, error?: Error, code?: number): void {
  const socket = this[ALLOWANCE].socket
  if (!this.destroyed && socket?.destroyed === false) destroyAfterLinger({ destroy: () => { resetConnection(socket) }, once: (event, listener) => socket.once(event, listener) })
  ;(Object.getPrototypeOf(this) as Http2Session).destroy.call(this, error, code)
}

/** Resets a client's connection: over TLS the TCP socket under it, as resetAndDestroy() takes a TCP handle only (it threw). */
export function resetConnection (socket: Socket): void {
  const tcp = (socket as Partial<TLSSocket>).encrypted === true ? (socket as Socket & { _parent?: Socket | null })._parent : socket
  if (tcp?.destroyed === false) tcp.resetAndDestroy()
}

/**
 * A stream cut for a slow reader: the client may be holding back that stream alone (no
 * WINDOW_UPDATE for it) while it reads the others, so the connection stays. A PING tells: none
 * answered within `ms` (clientTimeouts.send), the client reads nothing of the connection, which
 * is reset, every stream on it with it.
 */
export function resetIfUnread (session: Http2Session | undefined, ms: number): void {
  // A closed session takes no PING: it is destroyed once its streams end (see destroyOrReset).
  if (session === undefined || session.closed || session.destroyed) return
  let timer: NodeJS.Timeout | undefined
  // false: Node's limit of PINGs unanswered is reached, and their timers decide.
  if (session.ping(err => { if (err === null) clearTimeout(timer) })) timer = setTimeout(resetSession, ms, session as GuardedSession).unref()
}

function resetSession (session: GuardedSession): void {
  const socket = session[ALLOWANCE].socket
  if (socket !== undefined) resetConnection(socket)
  session.destroy()
}

function cutSession (session: Http2Session): void {
  // Destroyed meanwhile (the client's own GOAWAY with an error, sent with the frames that tripped the
  // limit): goaway() would throw, in a timer, ending the process.
  if (session.destroyed) return
  // goaway() first: over TLS a write completes a tick later, and Node drops what is still queued
  // (the rest of the streams' RST_STREAMs, destroy()'s own GOAWAY) once the session is destroyed: the
  // first stream's reset flushes this one. destroy() with the error and the code, not bare: that sent
  // a second GOAWAY, NO_ERROR, which clients read as a graceful shutdown. The error goes to Node's
  // own listener (the server's 'sessionError').
  session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
  session.destroy(CONNECTION_CUT, constants.NGHTTP2_ENHANCE_YOUR_CALM)
}

/** What a cut session's streams are destroyed with (Node passes the session's error on to each): see cutByGateway. */
const CONNECTION_CUT = new Error('HTTP/2 connection cut: ENHANCE_YOUR_CALM')

/** Whether `req` came on an HTTP/2 connection the gateway cut for abuse (see cutSession), its stream ended with it: not the client's leaving. */
export function cutByGateway (req: IncomingMessage): boolean {
  return isHttp2(req) && (req as unknown as Http2ServerRequest).stream.errored === CONNECTION_CUT
}

function onRemoteSettings (this: Http2Session): void {
  const session = this as GuardedSession
  clearTimeout(session[ALLOWANCE].preface)
  session[GUARD].spend(this, 'settings')
}

/** The h2c listener: cleartext HTTP/2 with prior knowledge, its requests handed to `handle` (the gateway's); `tcp`: its sockets' options. */
export function createH2cServer (limits: Http2Limits, handle: (req: IncomingMessage, res: ServerResponse) => void, tcp: Pick<ServerOpts, 'keepAlive' | 'keepAliveInitialDelay'>): Http2Server {
  return createServer({ ...http2ServerOptions(limits), ...tcp }, handle as never)
}

export async function listenH2c (server: Http2Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => { server.off('error', reject); resolve() })
  })
  return server.address() as AddressInfo
}
