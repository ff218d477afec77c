import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { resetConnection } from '../http2.ts'

/**
 * What `socket` holds of its answer, not yet in the kernel: `queued`, its writes not done (a write
 * counts until all of it is in); `writing`, what libuv holds of the one under way, which shrinks as
 * the client reads (as Node's own socket timeout reads progress: net.js _onTimeout).
 */
function unsent (socket: Socket): { queued: number, writing: number } {
  return { queued: socket.writableLength, writing: (socket as { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0 }
}

/** The bound a request is past: its connection's, or the listener's. */
export type Past = 'connection' | 'listener'

export interface PendingLimits {
  /** Answers pending on one connection. */
  readonly connection: number
  /** Answers pending on the whole listener. */
  readonly listener: number
  /** How long the client of an answer made may take none of it. */
  readonly sendMs: number
  /** Told of a connection about to be reset for it. */
  readonly onReset: (socket: Socket) => void
}

interface Connection { pending: number, past?: Past, closed: boolean }

/**
 * Answers pending: requests read whose answers are not yet sent (handed to the kernel). Node runs
 * every request a client pipelines (sends before reading the answers), as many as one read brings
 * (a 64 KiB read holds hundreds), and holds their answers until the client reads: clients
 * pipelining GET /metrics and reading none would make the process hold thousands of expositions,
 * for ever. So they are bounded per connection and over the listener, and a connection whose
 * client takes nothing of an answer for `sendMs` is reset, the answers queued behind it dropped.
 */
export class PendingAnswers {
  readonly #limits: PendingLimits
  readonly #connections = new WeakMap<Socket, Connection>()
  readonly #verdicts = new WeakMap<IncomingMessage, Past | undefined>()
  #total = 0

  constructor (limits: PendingLimits) {
    this.#limits = limits
  }

  /**
   * Counts `req`'s answer as pending (once: an `Expect: 100-continue` is judged before its request
   * is emitted) and says which bound it is past, if any. Once a request on a connection is, so is
   * every later one there: the connection ends after that one's refusal. `cheap` (a probe, whose
   * answer is a few bytes) is not held to the listener's bound.
   */
  track (req: IncomingMessage, res: ServerResponse, cheap: boolean): Past | undefined {
    if (this.#verdicts.has(req)) return this.#verdicts.get(req)
    const socket = req.socket
    const conn = this.#connection(socket)
    conn.pending++
    this.#total++
    conn.past ??= conn.pending > this.#limits.connection ? 'connection' : !cheap && this.#total > this.#limits.listener ? 'listener' : undefined
    this.#verdicts.set(req, conn.past)
    // From the moment the answer is all handed to the socket ('prefinish': those queued behind
    // another, once their turn comes) until it is all in the kernel ('finish').
    let watch: NodeJS.Timeout | undefined
    res.once('prefinish', () => { watch = this.#watch(socket) })
    res.once('close', () => { clearInterval(watch) })
    res.once('finish', () => {
      clearInterval(watch)
      if (conn.closed) return
      conn.pending--
      this.#total--
    })
    return conn.past
  }

  /**
   * Resets `socket` once its client has taken nothing for sendMs, not before: a large answer read
   * slowly (10 MB of /metrics at 300 KB/s) takes longer, and is sent whole. Looked at four times a
   * window: the reset comes 1 to 1.25 sendMs after the kernel last took some.
   */
  #watch (socket: Socket): NodeJS.Timeout {
    let last = unsent(socket)
    let since = performance.now()
    const watch = setInterval(() => {
      const now = unsent(socket)
      if (now.queued !== last.queued || now.writing !== last.writing) {
        last = now
        since = performance.now()
      } else if (performance.now() - since >= this.#limits.sendMs) {
        clearInterval(watch)
        this.#reset(socket)
      }
    }, this.#limits.sendMs / 4)
    return watch
  }

  // Reset, not closed: a closed socket keeps what its client never read (FIN-WAIT-1) for as long as
  // the client keeps its window shut.
  readonly #reset = (socket: Socket): void => {
    if (socket.destroyed) return
    this.#limits.onReset(socket)
    resetConnection(socket)
  }

  #connection (socket: Socket): Connection {
    let conn = this.#connections.get(socket)
    if (conn !== undefined) return conn
    conn = { pending: 0, closed: false }
    this.#connections.set(socket, conn)
    // Answers queued behind one never sent have no event of their own (Node drops them with the
    // socket): they are all released here.
    const c = conn
    socket.once('close', () => {
      c.closed = true
      this.#total -= c.pending
      c.pending = 0
    })
    return conn
  }

  /** The verdict track gave `req`, if it was tracked. */
  past (req: IncomingMessage): Past | undefined { return this.#verdicts.get(req) }
}
