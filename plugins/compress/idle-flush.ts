import type { Transform } from 'node:stream'

/** How long an encoder may hold input before what it holds of it is flushed to the client. */
export const HOLD_MS = 50

type Encoder = Transform & { flush: (kind: number) => void }

/** An encoder holding input not flushed yet; `since`: the tick count when the first of it came. */
interface Watch { readonly encoder: Encoder, readonly kind: number, since: number }

// One timer for all encoders, running only while some hold unflushed input (none per chunk): what an
// encoder holds is flushed once it is a whole interval old, 50 to 100 ms after it came, whether the
// input pauses or keeps trickling in (a steady trickle never pauses).
const watched = new Set<Watch>()
let timer: NodeJS.Timeout | undefined
let ticks = 0

function unlist (w: Watch): void {
  watched.delete(w)
  if (watched.size === 0 && timer !== undefined) { clearInterval(timer); timer = undefined }
}

function tick (): void {
  ticks++
  // After the loop's poll phase: input that waited on a busy loop, not on the upstream, is taken first.
  for (const w of watched) if (w.since < ticks - 1) { setImmediate(flushDue); return }
}

function flushDue (): void {
  for (const w of watched) {
    const e = w.encoder
    // Ended: its end flushes. Input still queued: the encoder is behind (a slow client); flushed once it caught up.
    if (e.destroyed || e.writableEnded) unlist(w)
    else if (w.since < ticks - 1 && e.writableLength === 0) { unlist(w); e.flush(w.kind) }
  }
}

/**
 * Flushes `encoder` (a zlib stream, with flush `kind`) when input it took is HOLD_MS to twice that
 * old, so that a slow or trickling upstream's head and body so far reach the client within 100 ms,
 * while a body sent in one go is packed whole. Cleared when the encoder closes (ends, or the client leaves).
 */
export function flushHeld<T extends Transform> (encoder: T, kind: number): T {
  const w: Watch = { encoder: encoder as unknown as Encoder, kind, since: 0 }
  const transform = encoder._transform.bind(encoder)
  encoder._transform = (chunk: Buffer, encoding, done) => {
    // Empty: a flush's own write.
    if (chunk.length > 0 && !watched.has(w)) {
      w.since = ticks
      watched.add(w)
      timer ??= setInterval(tick, HOLD_MS).unref()
    }
    transform(chunk, encoding, done)
  }
  encoder.once('close', () => { unlist(w) })
  return encoder
}
