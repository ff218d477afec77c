import { createHash } from 'node:crypto'
import type { ServerResponse } from 'node:http'

export const MB = 1024 * 1024
const CHUNK = 64 * 1024

/** Chunk `i` of a deterministic body: a repeating pattern stamped with its index, so order matters. */
function chunkAt (i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i % 251)
  b.writeUInt32BE(i, 0)
  return b
}

/** Produces `total` bytes chunk by chunk; `onChunk` sees the running total (to watch backpressure). */
export async function * patternBody (total: number, onChunk: (produced: number) => void = () => {}): AsyncGenerator<Buffer> {
  let produced = 0
  for (let i = 0; produced < total; i++) {
    const c = chunkAt(i, Math.min(CHUNK, total - produced))
    produced += c.length
    onChunk(produced)
    yield c
  }
}

/** The sha256 (hex) of patternBody(total), computed without keeping the body. */
export async function patternSha (total: number): Promise<string> {
  return sha256(patternBody(total))
}

/** The sha256 (hex) of what `source` yields; `onChunk` sees the running byte count. */
export async function sha256 (source: AsyncIterable<Buffer | Uint8Array>, onChunk: (read: number) => void = () => {}): Promise<string> {
  const h = createHash('sha256')
  let read = 0
  for await (const c of source) { h.update(c); onChunk(read += c.length) }
  return h.digest('hex')
}

/** What an upstream writing a body has done so far. */
export interface WriteProgress { written: number, waitingForDrain: boolean, finished: boolean }

/** Writes patternBody(total) to `res`, honouring backpressure, and ends it. */
export async function writePattern (res: ServerResponse, total: number, progress: WriteProgress): Promise<void> {
  for await (const c of patternBody(total)) {
    if (res.destroyed) return
    progress.written += c.length
    if (!res.write(c)) {
      progress.waitingForDrain = true
      await drainOrClose(res)
      progress.waitingForDrain = false
    }
  }
  res.end()
  progress.finished = true
}

function drainOrClose (res: ServerResponse): Promise<void> {
  return new Promise(resolve => {
    const done = () => { res.off('drain', done).off('close', done); resolve() }
    res.on('drain', done).on('close', done)
  })
}

/**
 * Resolves once `read()` has not changed for `quietMs` and over as many polls as that takes at 50 ms
 * (so a process descheduled for `quietMs` on a loaded machine, writers included, is no stall), bounded by `maxMs`.
 */
export async function settled (read: () => number, quietMs = 300, maxMs = 15_000): Promise<number> {
  const polls = Math.ceil(quietMs / 50)
  let last = read()
  let since = performance.now()
  let unchanged = 0
  for (const start = performance.now(); performance.now() - start < maxMs;) {
    await new Promise(resolve => setTimeout(resolve, 50))
    const now = read()
    if (now !== last) { last = now; since = performance.now(); unchanged = 0 } else if (++unchanged >= polls && performance.now() - since >= quietMs) return now
  }
  return last
}
