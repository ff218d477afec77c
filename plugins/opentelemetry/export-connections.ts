import http from 'node:http'
import https from 'node:https'
import type { Duplex } from 'node:stream'

const ignore = () => {}

/** A collector's answer asking the exporter to slow down (OTLP's throttling: 429 or 503), with its Retry-After. */
export interface Throttle {
  readonly status: number
  readonly retryAfter: string | undefined
}

/** The HTTP agent of one OTLP exporter, and what releases it. */
export interface ExportConnections {
  readonly agent: http.Agent
  /** The last answer if it was 429 or 503, once: the SDK's error carries neither its status nor its headers. */
  takeThrottle (): Throttle | undefined
  /** Destroys every connection, busy or idle, and every one opened later (a retry the SDK had scheduled). */
  close (): void
}

/**
 * The exporter's connections, each request on them cut `timeoutMs` after it took its connection.
 * The SDK's own `timeoutMillis` is a socket idle timer: a collector that trickles its reply
 * restarts it with every byte, and would hold the connection (and the export) for as long as it
 * trickles. keepSocketAlive() runs when a request is done with its connection.
 *
 * Every socket has an 'error' listener for good: Node removes the request's as it frees the socket,
 * and a write still queued then (a collector that answered before taking the body) failed with no
 * listener left, an uncaught error that ended the process. The request has reported its own errors.
 */
export function exportConnections (url: string, timeoutMs: number): ExportConnections {
  const Agent = new URL(url).protocol === 'https:' ? https.Agent : http.Agent
  const deadlines = new Map<Duplex, NodeJS.Timeout>()
  const start = (socket: Duplex) => {
    deadlines.set(socket, setTimeout(() => { socket.destroy(new Error(`OTLP export cut: no complete answer within timeout (${timeoutMs} ms)`)) }, timeoutMs))
  }
  const stop = (socket: Duplex) => { clearTimeout(deadlines.get(socket)); deadlines.delete(socket) }
  let closed = false
  let throttle: Throttle | undefined
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
      req.once('response', (res: http.IncomingMessage) => {
        const status = res.statusCode
        throttle = status === 429 || status === 503 ? { status, retryAfter: res.headers['retry-after'] } : undefined
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
    takeThrottle () {
      const last = throttle
      throttle = undefined
      return last
    },
    close () {
      closed = true
      agent.destroy()
    }
  }
}
