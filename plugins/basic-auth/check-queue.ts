/**
 * Password checks under way at once, and waiting for a turn. scrypt runs on libuv's thread pool,
 * which zlib (compress), dns.lookup and file reads share: a flood of wrong passwords on one route
 * once took every thread, and each compressed response of every route waited behind it (6 ms
 * became 1.4 s). Checks get at most half the pool; a bounded queue waits; past it, none is run.
 */
export class CheckQueue {
  readonly #concurrency: number
  readonly #maxWaiting: number
  readonly #waiting: Array<() => void> = []
  #active = 0

  constructor (concurrency: number, maxWaiting: number) {
    this.#concurrency = concurrency
    this.#maxWaiting = maxWaiting
  }

  /** Runs `check` when its turn comes; undefined, and nothing run, when the queue is full. */
  run<T> (check: () => Promise<T>): Promise<T> | undefined {
    if (this.#active < this.#concurrency) {
      this.#active++
      return this.#run(check)
    }
    if (this.#waiting.length >= this.#maxWaiting) return undefined
    return new Promise<void>(resolve => this.#waiting.push(resolve)).then(() => this.#run(check))
  }

  async #run<T> (check: () => Promise<T>): Promise<T> {
    try {
      return await check()
    } finally {
      // The slot goes straight to the next in line: a newcomer cannot take it first.
      const next = this.#waiting.shift()
      if (next === undefined) this.#active--
      else next()
    }
  }
}

/** Half of libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default), at least one. */
export const checkConcurrency = (): number => Math.max(1, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2))
