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
 * Live Buffer memory growth over the level when it was made, read each time `sample()` is called;
 * `peak` is the largest. Called at steps of a transfer's progress, not on a timer: as many
 * readings on a slow machine as on a fast one (each reading is two full GCs).
 */
export function bufferGrowth (): { sample (): void, readonly peak: number } {
  const base = liveBufferBytes()
  let peak = 0
  return {
    sample () { peak = Math.max(peak, liveBufferBytes() - base) },
    get peak () { return peak }
  }
}
