/**
 * Deadlines `ms` after each entry's start, so due in the order added: a queue with one timer, not a
 * timer per entry (a store's calls, plugins' async hooks). An entry is taken (settled in time), or
 * expires: `expire` is called with its item, the entry already gone.
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
  /** When the timer last ran (performance.now()): what #expireDue expires is due by then. */
  #firedAt = 0

  constructor (ms: number, expire: (item: T) => void) {
    this.#ms = ms
    this.#expire = expire
  }

  /** Adds an entry due `ms` after `from` (performance.now(), by default now): its id. */
  add (item: T, from = performance.now()): number {
    this.#items.push(item)
    this.#due.push(from + this.#ms)
    if (!this.#armed) this.#arm()
    return this.#removed + this.#items.length - 1
  }

  /** Whether entry `id` was still due (not taken, not expired); it no longer is. */
  take (id: number): boolean {
    const i = id - this.#removed
    if (i < this.#first || this.#items[i] === undefined) return false
    this.#items[i] = undefined
    // Entries are mostly taken in the order added: the front is moved past them, the queue kept short.
    while (this.#first < this.#items.length && this.#items[this.#first] === undefined) this.#first++
    this.#compact()
    return true
  }

  /** Expires every entry now, in the order added (not those `expire` adds). */
  expireAll (): void {
    // By id, not index: an `expire` that takes an entry may compact the queue under the loop.
    const end = this.#removed + this.#items.length
    try {
      while (this.#removed + this.#first < end && this.#first < this.#items.length) {
        const item = this.#items[this.#first]
        this.#items[this.#first++] = undefined
        if (item !== undefined) this.#expire(item)
      }
    } finally {
      this.#compact()
    }
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

  /**
   * The timer runs before the poll phase reads sockets: after the event loop was blocked past a
   * deadline, the answer may already be waiting unread. Entries expire in the check phase, after the
   * poll phase, so that those answered meanwhile are taken first: a busy process is not the callee's
   * fault. Only those due when the timer ran: an immediate before this one may have blocked the
   * loop past later deadlines, with no poll phase since.
   */
  readonly #fire = (): void => {
    this.#firedAt = performance.now()
    setImmediate(this.#expireDue)
  }

  readonly #expireDue = (): void => {
    this.#armed = false
    const now = this.#firedAt
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
