/** Polls until `condition()` holds or `maxMs` passes; returns whether it held. */
export async function until (condition: () => boolean, maxMs = 5_000): Promise<boolean> {
  for (const start = performance.now(); !condition();) {
    if (performance.now() - start >= maxMs) return false
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return true
}

/** Calls `call` every 20 ms until `done()` or `maxMs`; whether `done()` held. */
export async function callUntil (call: () => Promise<unknown>, done: () => boolean, maxMs: number): Promise<boolean> {
  for (const start = performance.now(); !done();) {
    if (performance.now() - start >= maxMs) return false
    call().catch(() => {})
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return true
}
