import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// Full GCs before each reading, so only memory something still holds is counted, not garbage.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Bytes held in Buffers/ArrayBuffers by this process after a full GC. */
export function liveBufferBytes (): number {
  // V8 frees ArrayBuffers on a background thread after a GC; the next GC waits for that to finish.
  gc(); gc()
  return process.memoryUsage().arrayBuffers
}

/**
 * Samples live Buffer memory every `everyMs` while `work` runs and returns the largest growth
 * over the level before it started.
 */
export async function peakBufferGrowth<T> (work: () => Promise<T>, everyMs = 250): Promise<{ result: T, peak: number }> {
  const base = liveBufferBytes()
  let peak = 0
  const timer = setInterval(() => { peak = Math.max(peak, liveBufferBytes() - base) }, everyMs)
  try {
    const result = await work()
    return { result, peak: Math.max(peak, liveBufferBytes() - base) }
  } finally {
    clearInterval(timer)
  }
}
