import type { Transform } from 'node:stream'

/** How long an encoder's input may pause before what it holds of it is flushed to the client. */
export const IDLE_MS = 50

type Encoder = Transform & { flush: (kind: number) => void }

/** An encoder holding input not flushed yet; `at`: the tick count when input last came. */
interface Watch { readonly encoder: Encoder, readonly kind: number, at: number }

// One timer for all encoders, running only while some hold unflushed input (none per chunk): an
// encoder that took no input for a whole interval is flushed, 50 to 100 ms after its input paused.
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
  for (const w of watched) if (w.at < ticks - 1) { setImmediate(flushIdle); return }
}

function flushIdle (): void {
  for (const w of watched) {
    const e = w.encoder
    // Ended: its end flushes. Input still queued: the encoder is behind (a slow client), not idle.
    if (e.destroyed || e.writableEnded) unlist(w)
    else if (w.at < ticks - 1 && e.writableLength === 0) { unlist(w); e.flush(w.kind) }
  }
}

/**
 * Flushes `encoder` (a zlib stream, with flush `kind`) when its input pauses for IDLE_MS, so that
 * a slow upstream's head and body so far reach the client, while a body that keeps coming is
 * packed whole. Cleared when the encoder closes (ends, or the client leaves).
 */
export function flushWhenIdle<T extends Transform> (encoder: T, kind: number): T {
  const w: Watch = { encoder: encoder as unknown as Encoder, kind, at: 0 }
  const transform = encoder._transform.bind(encoder)
  encoder._transform = (chunk: Buffer, encoding, done) => {
    // Empty: a flush's own write.
    if (chunk.length > 0) {
      w.at = ticks
      if (!watched.has(w)) { watched.add(w); timer ??= setInterval(tick, IDLE_MS).unref() }
    }
    transform(chunk, encoding, done)
  }
  encoder.once('close', () => { unlist(w) })
  return encoder
}
