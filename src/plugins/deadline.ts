import type { Logger } from 'pino'
import { logThrown } from './thrown.ts'

/** What `within` gives for work that has not settled in time. */
export const LATE = Symbol('late')

/** `work`'s value, or LATE once `ms` have passed without it settling; a rejection is thrown. */
export async function within<T> (work: T | Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<typeof LATE>(resolve => { timer = setTimeout(resolve, ms, LATE) })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs dispose() of plugins (or of their shared values) side by side, each for at most `ms`: one
 * that throws or hangs is logged and left behind, so that no reload or shutdown waits on it.
 */
export async function disposeWithin (items: ReadonlyArray<{ readonly plugin: string, readonly dispose: () => unknown }>, ms: number, log: Logger): Promise<void> {
  await Promise.all(items.map(async ({ plugin, dispose }) => {
    try {
      if (await within(dispose(), ms) === LATE) log.warn({ plugin, timeoutMs: ms }, 'plugin dispose did not finish within server.pluginTimeout; left behind')
    } catch (err) {
      logThrown(log, 'warn', 'plugin dispose failed', err, { plugin })
    }
  }))
}
