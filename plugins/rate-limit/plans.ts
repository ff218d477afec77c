import { toMs, type Consumer, type GatewayRequest, type PluginConfigProblem } from '../../src/index.ts'
import type { AlgorithmCode } from './algorithms.ts'
import { KeyBuilder } from './keys.ts'
import { MAX_WINDOW_MS, type ConsumerOverrides, type LimitConfig, type RateLimitConfig } from './schema.ts'

const CODES = { 'sliding-window': 's', 'token-bucket': 't', 'fixed-window': 'f' } as const satisfies Record<string, AlgorithmCode>

/** One limit, compiled: what the script needs and what the headers say. */
export interface Limit {
  readonly name: string
  /** Its position among the route's limits (the key builder's index). */
  readonly index: number
  /** `<name>:<algorithm><window ms>`: limits of one name with another algorithm or window keep other counters. */
  readonly id: string
  /**
   * The quota the headers announce (q, X-RateLimit-Limit) and the window it is announced over (w):
   * `requests` per `window`, but for a token bucket its `burst` per the time the bucket takes to
   * fill from empty (burst × window / requests, in whole seconds up): what remains is never above
   * it. Rounded up, that is a lower rate than the bucket's when the time is no whole number of
   * seconds (1 per 1 s for 10 per 1 s, burst 1): q and w cannot say both a bucket and its rate.
   */
  readonly requests: number
  readonly windowMs: number
  /** RateLimit-Policy item, e.g. `"burst";q=10;w=1`. */
  readonly policy: string
  /** The RateLimit item up to its remaining count: `"burst";r=`. */
  readonly remainingItem: string
  /** The 429's message, from the configured values: `rate limit "b" exceeded (10 per 1s, burst 1)`. */
  readonly message: string
}

/** The limits one request is held to (the route's, or a consumer's overrides of them), compiled at setup. */
export interface Plan {
  readonly limits: readonly Limit[]
  /** The script's ARGV: four values per limit. */
  readonly args: readonly string[]
  /** RateLimit-Policy, whole. */
  readonly policyHeader: string
  /** A request's store keys, one per limit. */
  readonly keysOf: (req: GatewayRequest) => readonly string[]
}

type Override = Exclude<ConsumerOverrides[string], false>

/** A limit's values as it runs: the configured ones, a consumer's override of them, the plugin's algorithm. */
function valuesOf (config: LimitConfig, override: Override | undefined, defaultAlgorithm: keyof typeof CODES) {
  const requests = override?.requests ?? config.requests
  const window = override?.window ?? config.window
  const algorithm = override?.algorithm ?? config.algorithm ?? defaultAlgorithm
  const code = CODES[algorithm]
  return { requests, window, windowMs: toMs(window), algorithm, code, burst: code === 't' ? override?.burst ?? config.burst ?? requests : requests }
}

/** The window as configured: `1h`, or its milliseconds in seconds. */
const windowText = (window: LimitConfig['window']): string => typeof window === 'string' ? window : `${window / 1000}s`

/**
 * Why a limit cannot run as written, with the key at fault: more than a request per µs (a token
 * bucket's arrival time, kept to the µs, would stop moving: no limit at all) or a bucket that takes
 * longer than a year to fill (expiries past what Redis takes, a w with more than 15 digits).
 */
function valueProblem (v: ReturnType<typeof valuesOf>): { key: 'requests' | 'burst', message: string } | undefined {
  if (v.windowMs * 1000 < v.requests) {
    return { key: 'requests', message: `${v.requests} per ${windowText(v.window)} is more than one request per microsecond: at most ${v.windowMs * 1000}` }
  }
  if (v.code === 't' && v.burst * v.windowMs / v.requests > MAX_WINDOW_MS) {
    return { key: 'burst', message: `a bucket of ${v.burst} at ${v.requests} per ${windowText(v.window)} takes more than 365 days to fill: at most ${Math.floor(MAX_WINDOW_MS * v.requests / v.windowMs)}` }
  }
  return undefined
}

function compilePlan (limits: ReadonlyArray<{ config: LimitConfig, index: number, override?: Override }>, defaultAlgorithm: keyof typeof CODES, keys: KeyBuilder, owner?: string): Plan {
  const compiled: Limit[] = []
  const args: string[] = []
  for (const { config, index, override } of limits) {
    const values = valuesOf(config, override, defaultAlgorithm)
    const { requests, window, windowMs, code, burst } = values
    // The configured values were checked with their file position (limitValueProblems); what a
    // consumer's override makes of them can only be refused here, which fails the load as well.
    const problem = override === undefined ? undefined : valueProblem(values)
    if (problem !== undefined) throw new Error(`consumer "${owner}", metadata.rate-limit.${config.name}: ${problem.message}`)
    // Whole seconds, as the draft's w is an Integer: rounded up, so a client keeping to it is never limited.
    const announcedMs = burst === requests ? windowMs : Math.ceil(burst * windowMs / requests / 1000) * 1000
    compiled.push({
      name: config.name,
      index,
      id: `${config.name}:${code}${windowMs}`,
      requests: burst,
      windowMs: announcedMs,
      policy: `"${config.name}";q=${burst};w=${announcedMs / 1000}`,
      remainingItem: `"${config.name}";r=`,
      message: `rate limit "${config.name}" exceeded (${requests} per ${windowText(window)}${burst === requests ? '' : `, burst ${burst}`})`
    })
    args.push(code, String(requests), String(windowMs), String(burst))
  }
  return { limits: compiled, args, policyHeader: compiled.map(l => l.policy).join(', '), keysOf: keys.keysFor(compiled) }
}

/** The metadata key consumers carry their overrides under. */
const METADATA_KEY = 'rate-limit'

/** The route's plan, and each consumer's own plan where its metadata overrides a limit. */
export interface Plans {
  readonly base: Plan
  readonly byConsumer: ReadonlyMap<string, Plan>
}

/**
 * The plugin's check: each limit's name once (a consumer's overrides, the RateLimit headers and
 * the 429 name a limit by it), reported at the name written again.
 */
export function limitNameProblems (limits: readonly LimitConfig[]): PluginConfigProblem[] {
  const first = new Map<string, number>()
  return limits.flatMap((l, i) => {
    const earlier = first.get(l.name)
    if (earlier === undefined) first.set(l.name, i)
    return earlier === undefined ? [] : [{ path: ['limits', i, 'name'], message: `limits[${earlier}] is named "${l.name}" too: give each limit its own name` }]
  })
}

/**
 * The plugin's check of each limit's values that the schema cannot make (see valueProblem), at the
 * key at fault; and a limit's own burst on another algorithm, which would be ignored (the client
 * gets no burst it was promised). Not a consumer's burst: one consumer's overrides serve routes
 * of any algorithm, and a limit that is no bucket there ignores it.
 */
export function limitValueProblems (config: RateLimitConfig): PluginConfigProblem[] {
  return config.limits.flatMap((l, i) => {
    const values = valuesOf(l, undefined, config.algorithm ?? 'sliding-window')
    const problem = valueProblem(values) ?? (values.code !== 't' && l.burst !== undefined
      ? { key: 'burst', message: `burst is token-bucket only, and this limit is ${values.algorithm}: it would be ignored; set algorithm: token-bucket, or remove burst` }
      : undefined)
    return problem === undefined ? [] : [{ path: ['limits', i, problem.key], message: problem.message }]
  })
}

/** The consumers whose metadata may override a limit: those with the plugin's key. */
export const overridingConsumers = (consumers: readonly Consumer[]): readonly Consumer[] =>
  consumers.filter(c => c.metadata[METADATA_KEY] !== undefined)

/** Plans of limits the check passed (names unique); `consumers`: at least those that override a limit. */
export function compilePlans (config: RateLimitConfig, consumers: readonly Consumer[]): Plans {
  const algorithm = config.algorithm ?? 'sliding-window'
  const entries = config.limits.map((c, index) => ({ config: c, index }))
  const by = config.by ?? ['consumer']
  const keys = new KeyBuilder(config.limits.map(l => l.by ?? by), config.ipv6Prefix ?? 64)
  const byConsumer = new Map<string, Plan>()
  for (const consumer of consumers) {
    const overrides = consumer.metadata[METADATA_KEY] as ConsumerOverrides | undefined
    if (overrides === undefined || !config.limits.some(l => overrides[l.name] !== undefined)) continue
    const own = entries.flatMap(e => {
      const o = overrides[e.config.name]
      return o === false ? [] : [{ ...e, override: o }]
    })
    byConsumer.set(consumer.id, compilePlan(own, algorithm, keys, consumer.id))
  }
  return { base: compilePlan(entries, algorithm, keys), byConsumer }
}
