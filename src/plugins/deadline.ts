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

/**
 * Deadlines `ms` after each is added, so due in the order added: a queue with one timer, not a timer
 * per entry. An entry is taken (settled in time), or expires: `expire` is called with its item.
 */
export class Deadlines<T> {
  readonly #ms: number
  readonly #expire: (item: T) => void
  /** From #first on: each entry's item (undefined once taken or expired) and when it is due (performance.now()). */
  readonly #items: Array<T | undefined> = []
  readonly #due: number[] = []
  #first = 0
  /** Entries removed from the front: an entry's id minus this is its index. */
  #removed = 0
  /** The timer is set (for the first entry's deadline, or an earlier one's). */
  #armed = false

  constructor (ms: number, expire: (item: T) => void) {
    this.#ms = ms
    this.#expire = expire
  }

  /** Adds an entry due `ms` from now: its id. */
  add (item: T): number {
    this.#items.push(item)
    this.#due.push(performance.now() + this.#ms)
    if (!this.#armed) this.#arm()
    return this.#removed + this.#items.length - 1
  }

  /** Entry `id` does not expire (if it has not already). */
  take (id: number): void {
    const i = id - this.#removed
    if (i < this.#first) return
    this.#items[i] = undefined
    // Entries are mostly taken in the order added: the front is moved past them, the queue kept short.
    while (this.#first < this.#items.length && this.#items[this.#first] === undefined) this.#first++
    this.#compact()
  }

  /** Drops the front once it is all of the queue, or large and half of it (splice copies what is left). */
  #compact (): void {
    if (this.#first < this.#items.length && (this.#first < 1_024 || this.#first * 2 < this.#items.length)) return
    this.#items.splice(0, this.#first)
    this.#due.splice(0, this.#first)
    this.#removed += this.#first
    this.#first = 0
  }

  #arm (): void {
    this.#armed = true
    setTimeout(this.#fire, Math.max(0, (this.#due[this.#first] as number) - performance.now())).unref()
  }

  readonly #fire = (): void => {
    this.#armed = false
    const now = performance.now()
    try {
      while (this.#first < this.#items.length) {
        const item = this.#items[this.#first]
        if (item !== undefined && (this.#due[this.#first] as number) > now) break
        // Gone before `expire` runs: it may take its own entry, or add one.
        this.#items[this.#first++] = undefined
        if (item !== undefined) this.#expire(item)
      }
    } finally {
      this.#compact()
      if (!this.#armed && this.#first < this.#items.length) this.#arm()
    }
  }
}
