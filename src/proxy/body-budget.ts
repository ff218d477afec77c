/**
 * The process's bytes of request bodies read ahead of their upstream connection (read whole, or a
 * queued body read on: see Exchange.#forward, #wait), bounded in total by server.requestBufferTotal:
 * per request, requestBuffer alone let 10,000 stalled uploads hold 630 MB. One count for every
 * config: a reload's requests in flight still hold theirs.
 */
let reserved = 0

/** server.requestBufferTotal's default. */
export const DEFAULT_REQUEST_BUFFER_TOTAL = 64 * 1024 * 1024

/** Takes `bytes` of a budget of `total`, if they fit; false (nothing taken) if not. */
export function reserveBody (bytes: number, total: number): boolean {
  if (reserved + bytes > total) return false
  reserved += bytes
  return true
}

/** Gives back bytes reserveBody took. */
export function releaseBody (bytes: number): void {
  reserved -= bytes
}

/** The bytes reserved now (portcullis_request_buffer_bytes). */
export const bodyBytesReserved = (): number => reserved
