import { AsyncLocalStorage } from 'node:async_hooks'
import http from 'node:http'
import https from 'node:https'
import type { Duplex } from 'node:stream'
import { pauseOf, resumed, throttled, type Pause } from './throttling.ts'

const ignore = () => {}

/** The HTTP agent of one OTLP exporter, and what releases it. */
export interface ExportConnections {
  readonly agent: http.Agent
  /** The wait the endpoint asked for (429 or 503 to any exporter's request to it), if it still runs. */
  paused (): Pause | undefined
  /**
   * Runs `send`, an export through the agent: a throttling answer to one of its requests calls
   * `onThrottle`, and its later requests (the SDK's retries) fail at once, so that it ends.
   */
  run (send: () => void, onThrottle: (pause: Pause) => void): void
  /** Destroys every connection, busy or idle, and every one opened later (a retry the SDK had scheduled). */
  close (): void
}

/** One export as the agent sees its requests: found through the async context, the SDK's retries included. */
interface Run {
  /** The status of the throttling answer it had, if any. */
  throttledBy: number | undefined
  readonly onThrottle: (pause: Pause) => void
}
const runs = new AsyncLocalStorage<Run>()

/**
 * The exporter's connections, each request on them cut `timeoutMs` after it took its connection.
 * The SDK's own `timeoutMillis` is a socket idle timer: a collector that trickles its reply
 * restarts it with every byte, and would hold the connection (and the export) for as long as it
 * trickles. keepSocketAlive() runs when a request is done with its connection.
 *
 * Every socket has an 'error' listener for good: Node removes the request's as it frees the socket,
 * and a write still queued then (a collector that answered before taking the body) failed with no
 * listener left, an uncaught error that ended the process. The request has reported its own errors.
 *
 * A throttling answer (429, 503) pauses the endpoint (throttling.ts); a request while it is paused,
 * or a retry of an export that was throttled, fails without a connection, with an error the SDK
 * does not retry: its own RetryingTransport would send a throttled export up to 5 more times.
 */
export function exportConnections (url: string, timeoutMs: number): ExportConnections {
  const Agent = new URL(url).protocol === 'https:' ? https.Agent : http.Agent
  const deadlines = new Map<Duplex, NodeJS.Timeout>()
  const start = (socket: Duplex) => {
    deadlines.set(socket, setTimeout(() => { socket.destroy(new Error(`OTLP export cut: no complete answer within timeout (${timeoutMs} ms)`)) }, timeoutMs))
  }
  const stop = (socket: Duplex) => { clearTimeout(deadlines.get(socket)); deadlines.delete(socket) }
  const endpoint = new URL(url).href
  let closed = false
  const agent = new (class extends Agent {
    override createConnection (options: http.ClientRequestArgs, callback: (err: Error | null, stream?: Duplex) => void): Duplex | null | undefined {
      // Refused through the callback, no socket made: the request fails with this error.
      if (closed) {
        callback(new Error('OTLP exporter closed'))
        return undefined
      }
      const socket = super.createConnection(options, callback)
      if (socket != null) {
        socket.on('error', ignore)
        socket.once('close', () => { stop(socket) })
        start(socket)
      }
      return socket
    }

    // Not in @types/node: Node's Agent takes each of its requests here, the one place to see their answers.
    addRequest (req: http.ClientRequest, options: object): void {
      const run = runs.getStore()
      const refused = pauseOf(endpoint)?.status ?? run?.throttledBy
      if (refused !== undefined) {
        // As a refused connection fails (Agent.createSocket): no socket, the request's 'error'.
        (req as unknown as { onSocket: (socket: null, err: Error) => void }).onSocket(null, new Error(`OTLP export not sent: the endpoint answered ${refused}, asking to wait`))
        return
      }
      req.once('response', (res: http.IncomingMessage) => {
        const status = res.statusCode ?? 0
        if (status === 429 || status === 503) {
          const pause = throttled(endpoint, { status, retryAfter: res.headers['retry-after'] })
          if (run !== undefined) {
            run.throttledBy = status
            run.onThrottle(pause)
          }
        } else if (status < 300) resumed(endpoint)
      })
      ;(Agent.prototype as unknown as { addRequest: (req: http.ClientRequest, options: object) => void }).addRequest.call(this, req, options)
    }

    override reuseSocket (socket: Duplex, request: http.ClientRequest): void {
      start(socket)
      super.reuseSocket(socket, request)
    }

    // Whether the socket is kept (@types/node says void): not with a write still queued, whose
    // failure would come once it is idle, or reach the next export.
    override keepSocketAlive (socket: Duplex): boolean {
      stop(socket)
      return socket.writableLength === 0 && (super.keepSocketAlive(socket) as unknown) !== false
    }
  })({ keepAlive: true })
  return {
    agent,
    paused: () => pauseOf(endpoint),
    run (send, onThrottle) { runs.run({ throttledBy: undefined, onThrottle }, send) },
    close () {
      closed = true
      agent.destroy()
    }
  }
}
