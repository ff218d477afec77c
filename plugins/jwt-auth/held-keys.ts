import type { KeyFunction } from './key-set.ts'
import { PublicParts } from './public-keys.ts'

/** The least time between two fetches of a source (background refresh, unknown kid, retry), whatever `jwks.cooldown` says. */
const FETCH_FLOOR_MS = 1_000
/**
 * The longest wait between attempts while no set was ever fetched (the provider down at start):
 * from FETCH_FLOOR_MS, doubling at each failure, up to this or the cooldown if shorter. A whole
 * cooldown (up to 1d) would turn a one-second blip at start into a day of 503s; once a set is
 * held, the cooldown alone limits fetches (a flood of unknown kids).
 */
export const NO_SET_RETRY_MAX_MS = 30_000
/** The longest a Node timer waits: past it, setTimeout fires after 1 ms (a max-age of a year would poll in a loop). */
const TIMER_MAX_MS = 2 ** 31 - 1

/** Said once per key source, the first time a token without kid meets a set whose keys all have one (401 missing_kid). */
export const MISSING_KID_WARNING = 'jwt-auth: a token names no kid, and every key of the set has one: refused (401 missing_kid); if the issuer signs its tokens so, have it set kid in their header'

/**
 * A URL to fetch, made once per URL: undici sends no user and password written in it (fetch()
 * refuses them), so they go in an Authorization: Basic header; `shown` is the URL with its secrets
 * hidden, for logs and errors.
 */
export interface Target { readonly url: string, readonly headers: Readonly<Record<string, string>>, readonly shown: string }

/** What a source asks of each config's key set that names it (RemoteKeys, one per jwks settings). */
export interface KeyHolder {
  readonly cooldownMs: number
  /** How long after a fetch that brought this max-age the set is due for a refresh, by this holder's settings. */
  refreshDelay (maxAgeMs: number | undefined): number
  /** Fetches the set now, with this holder's timeout, log and metrics. */
  refresh (trigger: string): Promise<void>
  /** A set was fetched (`parts`, its entries' members): which of this holder's secrets are members of them. */
  examine (parts: PublicParts): void
}

/**
 * One remote source's key set and its fetching: the last good set, the fetch in flight, when the
 * last one started and the background refresh timer. ctx.shared lives as long as one config (and
 * is per jwks settings): held here, per source, the set outlives a reload (the next config's
 * routes verify with it at once, and keep verifying while the provider is down), and the cooldown
 * counts across routes and reloads, so that the source is fetched at most once per cooldown.
 */
export class HeldKeys {
  set: KeyFunction | undefined
  /** The set's usable keys, as JSON: what a new set is compared with. */
  keys = new Set<string>()
  /** The keys left out of the last set read (unusable), as JSON, installed or not: each is warned about once. */
  skipped = new Set<string>()
  /** Whether the last set read had more keys than are read: warned about once. */
  saidTooMany = false
  /** Whether a token without kid met a set whose keys all have one: warned about once. */
  saidMissingKid = false
  /** Bumped when a key disappears from the set, or a secret is found public: tokens verified before must be verified again. */
  generation = 0
  /** The members of the last set fetched (installed or not): what a secret given later is examined against. */
  fetched: PublicParts | undefined
  /** The SHA-256 of the response `fetched` was read from: the same body again is not read again. */
  #fetchedDigest: string | undefined
  /** The secrets (by their SHA-256) looked for in `fetched` already: not again at each fetch of the same body (100 secrets of 4 KB stalled 0.5-0.9 s a refetch). */
  readonly #examined = new Set<string>()
  /**
   * Secrets (of any holder, by their SHA-256) found to be a member of a key of a set fetched, and
   * where (`keys[0].n`): public for good, even once the key is gone, for as long as the source is held.
   */
  readonly publicSecrets = new Map<string, string>()
  /** The last good response's max-age. */
  maxAgeMs: number | undefined
  /** The key set's URL: a jwksUri, or what the issuer's discovery document names (read again after a failed fetch). */
  jwks: Target | undefined
  /** When the last fetch started and ended (performance.now()). */
  lastAttempt = -Infinity
  lastEnded = -Infinity
  /** Fetches failed in a row (0: the last one brought a set): the next is a retry, a cooldown on (a backoff before any set). */
  failures = 0
  /** In insertion order: the last is the newest config's, which runs the background refresh. */
  readonly #holders = new Set<KeyHolder>()
  #inflight: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  /** When the timer is meant to fire (performance.now()), before the floor. */
  #timerAt = Infinity
  readonly #unused: () => void

  constructor (unused: () => void = () => {}) { this.#unused = unused }

  join (holder: KeyHolder): void { this.#holders.add(holder) }

  leave (holder: KeyHolder): void {
    if (!this.#holders.delete(holder) || this.#holders.size > 0) return
    this.#clearTimer()
    this.#unused()
  }

  get inflight (): Promise<void> | undefined { return this.#inflight }

  /**
   * A set was fetched (`keys`, its entries as they came; `digest`, its body's SHA-256): every holder
   * examines it for its secrets (one fetches for all). Its members are read once per body: any
   * client can have it refetched (an unknown kid), and a 1 MB set read for each secret stalled the
   * event loop for seconds; each secret is looked for in them once (unexamined).
   */
  sawKeys (keys: readonly unknown[], digest: string): void {
    if (this.fetched === undefined || digest !== this.#fetchedDigest) {
      this.fetched = new PublicParts(keys)
      this.#fetchedDigest = digest
      this.#examined.clear()
    }
    for (const holder of this.#holders) holder.examine(this.fetched)
  }

  /** Whether the secret of `digest` is yet to be looked for in `fetched`; it counts as looked for from now. */
  unexamined (digest: string): boolean {
    if (this.#examined.has(digest)) return false
    this.#examined.add(digest)
    return true
  }

  /** Runs `fetch` unless a fetch is in flight; the promise of the one that runs. */
  run (fetch: () => Promise<void>): Promise<void> {
    if (this.#inflight === undefined) {
      this.#clearTimer()
      this.lastAttempt = performance.now()
      this.#inflight = fetch().finally(() => { this.#inflight = undefined })
    }
    return this.#inflight
  }

  /** Milliseconds until a fetch may run (0: now): the shortest cooldown among the holders (or the backoff before any set), at least FETCH_FLOOR_MS, from the last attempt. */
  waitMs (): number {
    // None left (a request finishing after its config was disposed): the floor alone.
    const shortest = this.#holders.size === 0 ? 0 : Math.min(...[...this.#holders].map(h => h.cooldownMs))
    return Math.max(0, this.lastAttempt + Math.max(this.#gap(shortest), FETCH_FLOOR_MS) - performance.now())
  }

  /** The least time between attempts under `cooldownMs`: before any set, after failures, a backoff capped at NO_SET_RETRY_MAX_MS. */
  #gap (cooldownMs: number): number {
    if (this.set !== undefined || this.failures === 0) return cooldownMs
    return Math.min(cooldownMs, FETCH_FLOOR_MS * 2 ** Math.min(this.failures - 1, 30), NO_SET_RETRY_MAX_MS)
  }

  /** After a fetch: the next one when the soonest holder wants it. */
  scheduleNext (): void {
    this.lastEnded = performance.now()
    const ms = Math.min(...[...this.#holders].map(h => this.#delay(h)))
    this.#schedule(this.lastEnded + ms, ms)
  }

  /** When a holder wants the next fetch: the timer moves only to be sooner. */
  scheduleFor (holder: KeyHolder): void {
    const at = this.lastEnded + this.#delay(holder)
    if (this.#timer === undefined || at < this.#timerAt) this.#schedule(at, at - performance.now())
  }

  /** After the last fetch: a refresh when the set is due, or a retry a cooldown on (the backoff before any set). */
  #delay (holder: KeyHolder): number { return this.failures > 0 ? this.#gap(holder.cooldownMs) : holder.refreshDelay(this.maxAgeMs) }

  /** The timer, for `at` (performance.now() time): `ms` from now. */
  #schedule (at: number, ms: number): void {
    this.#clearTimer()
    if (this.#holders.size === 0) return
    this.#timerAt = at
    // However short the cooldown (0 in tests), the background refresh does not poll a provider in a loop.
    const delay = Math.min(Math.max(ms, FETCH_FLOOR_MS), TIMER_MAX_MS)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void [...this.#holders].at(-1)?.refresh('refresh')
    }, delay).unref()
  }

  #clearTimer (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

/** Sources some config uses: bounded by the configs alive (the active one, and the one a reload replaces). */
const held = new Map<string, HeldKeys>()

/**
 * The key set held for a source (its JSON: issuer or jwksUri); each RemoteKeys joins it and leaves
 * when disposed. A reload sets up the next config before the active one is disposed: a source both
 * use keeps its set, fetch and timer, and one that only the old config used is dropped.
 */
export function holdKeys (source: string): HeldKeys {
  let keys = held.get(source)
  if (keys === undefined) {
    keys = new HeldKeys(() => held.delete(source))
    held.set(source, keys)
  }
  return keys
}
