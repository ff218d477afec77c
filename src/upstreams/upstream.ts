import { Pool } from 'undici'
import { toMs } from '../config/duration.ts'
import type { UpstreamConfig } from '../config/schema.ts'

/** One backend address of an upstream, with its own keep-alive connection pool. */
export interface Target {
  /** Origin, e.g. http://10.0.0.5:3000; also the target's id in health messages and the admin API. */
  readonly url: string
  /** host[:port], the Host header sent when the route does not preserve the client's. */
  readonly host: string
  readonly pool: Pool
}

export const DEFAULT_TIMEOUTS = { connect: 5_000, response: 60_000, idle: 60_000 }

/** A named group of targets. Built at config load; closed when its runtime is disposed. */
export class Upstream {
  readonly name: string
  readonly targets: readonly Target[]
  readonly timeouts: { connect: number, response: number, idle: number }
  #next = 0

  constructor (name: string, config: UpstreamConfig) {
    this.name = name
    const t = config.timeouts ?? {}
    this.timeouts = {
      connect: t.connect === undefined ? DEFAULT_TIMEOUTS.connect : toMs(t.connect),
      response: t.response === undefined ? DEFAULT_TIMEOUTS.response : toMs(t.response),
      idle: t.idle === undefined ? DEFAULT_TIMEOUTS.idle : toMs(t.idle)
    }
    const keepAlive = config.keepAlive === undefined ? 4_000 : toMs(config.keepAlive)
    this.targets = config.targets.map(({ url }) => {
      const origin = new URL(url)
      return {
        url: origin.origin,
        host: origin.host,
        pool: new Pool(origin.origin, {
          connections: config.connections ?? 128,
          pipelining: 1,
          keepAliveTimeout: keepAlive,
          connect: { timeout: this.timeouts.connect },
          headersTimeout: this.timeouts.response,
          bodyTimeout: this.timeouts.idle
        })
      }
    })
  }

  /** The target for the next request (round-robin). */
  pick (): Target {
    const t = this.targets[this.#next] as Target
    this.#next = (this.#next + 1) % this.targets.length
    return t
  }

  /** Lets in-flight requests finish, then closes every connection. */
  async close (): Promise<void> {
    await Promise.all(this.targets.map(t => t.pool.close()))
  }
}
