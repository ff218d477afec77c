import { toBytes } from '../config/byte-size.ts'
import type { UpstreamConfig } from '../config/schema.ts'
import { RETRY_CONDITIONS } from '../config/upstream-schema.ts'
import { RetryBudget } from './retry-budget.ts'

const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']
const DEFAULT_MAX_BODY_BYTES = 64 * 1024
const DEFAULT_BUDGET = 0.2
/** As nginx's `proxy_next_upstream error`: a failed connection, or one that broke before the response headers. */
const DEFAULT_ON: ReadonlyArray<typeof RETRY_CONDITIONS[number] | number> = ['connect-error', 'reset']

/** Why an attempt failed, as far as retrying is concerned. */
const Failure = {
  /** The request never left the gateway (connection refused, connect timeout, DNS). */
  Connect: 0,
  /** The connection broke after the request was sent, before the response headers. */
  Reset: 1,
  /** No response headers within the response timeout. */
  Timeout: 2
} as const
export type Failure = typeof Failure[keyof typeof Failure]

/**
 * A response head undici's parser refused (`HTTP/1.1 2000`, obs-fold, a NUL, too large; two
 * Content-Lengths that differ, which undici reports as a length mismatch): malformed, not
 * unreachable. Only so before the head arrived: a parser error after it is the body's.
 */
export function malformedHead (err: Error): boolean {
  const code = (err as { code?: string }).code
  return err.name === 'HTTPParserError' || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
}

/**
 * Why a try failed before its response head, if it may be retried at all. `connected`: undici had
 * begun writing the request (its onConnect ran) when the error came. A malformed head is never
 * retried: the upstream had the request and answered it (a PUT would run twice), and would most
 * likely answer the same again.
 */
export function classifyFailure (err: Error, connected: boolean): Failure | undefined {
  if (!connected) return Failure.Connect
  if (malformedHead(err)) return undefined
  return (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' ? Failure.Timeout : Failure.Reset
}

/** The name of a failure in config (`retries.on`) and in the retries metric. */
export function retryReason (failure: Failure): string {
  return RETRY_CONDITIONS[failure]
}

/** What an upstream's `retries` config allows, compiled once. */
export class RetryPolicy {
  readonly attempts: number
  readonly budget: RetryBudget
  readonly maxBodyBytes: number
  readonly #methods: ReadonlySet<string>
  readonly #on: readonly [connect: boolean, reset: boolean, timeout: boolean]
  readonly #statuses: Uint8Array
  /** Whether any condition applies after the body was sent, so small bodies must be buffered. */
  readonly #afterSend: boolean

  constructor (config: UpstreamConfig['retries']) {
    const c = config === false ? { attempts: 0 } : config ?? {}
    this.attempts = c.attempts ?? 1
    this.budget = new RetryBudget(c.budget ?? DEFAULT_BUDGET)
    this.maxBodyBytes = c.maxBodyBytes === undefined ? DEFAULT_MAX_BODY_BYTES : toBytes(c.maxBodyBytes)
    this.#methods = new Set((c.methods ?? IDEMPOTENT_METHODS).map(m => m.toUpperCase()))
    const on = c.on ?? DEFAULT_ON
    this.#on = [on.includes('connect-error'), on.includes('reset'), on.includes('timeout')]
    this.#statuses = new Uint8Array(600)
    for (const s of on) if (typeof s === 'number') this.#statuses[s] = 1
    this.#afterSend = this.attempts > 0 && on.some(s => s !== 'connect-error')
  }

  /** Whether a failure may be retried for this method (a connect error, for any method: nothing was sent). */
  retriesFailure (failure: Failure, method: string): boolean {
    return this.#on[failure] && (failure === Failure.Connect || this.#methods.has(method))
  }

  retriesStatus (status: number, method: string): boolean {
    return this.#statuses[status] === 1 && this.#methods.has(method)
  }

  /**
   * Whether the request body should be read into memory before the first try, so a retry after
   * it was sent can send it again: only for retried methods with a content-length up to maxBodyBytes.
   */
  buffersBody (method: string, contentLength: string): boolean {
    return this.#afterSend && Number(contentLength) <= this.maxBodyBytes && this.#methods.has(method)
  }
}
