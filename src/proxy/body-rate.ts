import type { IncomingMessage } from 'node:http'

/**
 * server.clientTimeouts.minBodyRate, as Apache's mod_reqtimeout MinRate: the body may take `graceMs`
 * plus one second per `rate` bytes received. One timer per watched body, rescheduled to the next
 * moment the client could fall behind; time the gateway holds the body back (paused) is not counted.
 */
export class BodyRateWatch {
  readonly #req: IncomingMessage
  readonly #rate: number
  readonly #tooSlow: () => void
  readonly #startBytes: number
  #allowedFrom: number
  #lastCheck: number
  #timer: NodeJS.Timeout

  constructor (req: IncomingMessage, graceMs: number, rate: number, tooSlow: () => void) {
    this.#req = req
    this.#rate = rate
    this.#tooSlow = tooSlow
    this.#startBytes = req.socket.bytesRead
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
    const deadline = w.#allowedFrom + graceMs + (req.socket.bytesRead - w.#startBytes) * 1000 / w.#rate
    if (now >= deadline) w.#tooSlow()
    else w.#timer = setTimeout(BodyRateWatch.#check, Math.min(deadline - now, 1000) + 1, w, graceMs)
  }
}
