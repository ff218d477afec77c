import type { IncomingMessage } from 'node:http'

/**
 * server.clientTimeouts.minBodyRate, as Apache's mod_reqtimeout MinRate: the body may take `graceMs`
 * plus one second per `rate` bytes received. One timer per watched body, rescheduled to the next
 * moment the client could fall behind. Started when the gateway begins to read the body (what
 * arrived before, waiting unread, counts as received); time it holds the body back (paused) is not counted.
 */
export class BodyRateWatch {
  readonly #req: IncomingMessage
  readonly #rate: number
  readonly #tooSlow: () => void
  /** Body bytes received, waiting unread when the watch began and since: counted as they reach the request (see the constructor). */
  #bytes: number
  #allowedFrom: number
  #lastCheck: number
  #timer: NodeJS.Timeout

  constructor (req: IncomingMessage, graceMs: number, rate: number, tooSlow: () => void) {
    this.#req = req
    this.#rate = rate
    this.#tooSlow = tooSlow
    this.#bytes = req.readableLength
    // Counted as Node pushes them into the request, not by req.socket.bytesRead: over HTTP/2 the
    // socket is the whole session's, and another stream's bytes would count as this body's progress.
    const push = req.push
    req.push = (chunk: Buffer | null, encoding?: BufferEncoding) => {
      if (chunk !== null) this.#bytes += chunk.length
      return push.call(req, chunk, encoding)
    }
    this.#allowedFrom = this.#lastCheck = performance.now()
    this.#timer = setTimeout(BodyRateWatch.#check, graceMs + 1, this, graceMs)
  }

  stop (): void { clearTimeout(this.#timer) }

  static #check (w: BodyRateWatch, graceMs: number): void {
    const req = w.#req
    if (req.complete || req.destroyed) return
    const now = performance.now()
    // Held back by the upstream's backpressure: the client is not to blame for that stretch.
    if (req.isPaused()) w.#allowedFrom += now - w.#lastCheck
    w.#lastCheck = now
    const deadline = w.#allowedFrom + graceMs + w.#bytes * 1000 / w.#rate
    if (now >= deadline) w.#tooSlow()
    else w.#timer = setTimeout(BodyRateWatch.#check, Math.min(deadline - now, 1000) + 1, w, graceMs)
  }
}
