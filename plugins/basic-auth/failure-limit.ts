import { LRUCache } from 'lru-cache'
import { defineScript, StoreError, type GatewayRequest, type LocalData, type Store } from '../../src/index.ts'
import { addressKey } from '../shared/address-key.ts'
import type { Outcome } from '../shared/auth/authenticator.ts'
import { fail, type AuthFailure } from '../shared/auth/failure.ts'
import { serverClock, type ServerClock } from '../shared/server-clock.ts'
import type { StoreErrorLog } from '../shared/store-errors.ts'

const TOO_MANY = fail(429, 'too_many_failures', 'too_many_failures', 'too many failed password checks from this address; try again later')

/** IPv6 clients are counted by their /64, as rate-limit's `ip` counts them: one client holds a whole /64. */
const V6_PREFIX = 64

/** Addresses known to be at their limit, remembered without a store call. */
const MAX_BLOCKED = 10_000

/** The first value of the answer to a take run after its deadline. */
const LATE = -1
/** What a take the store ran after the gateway gave up on it fails with (it counted nothing). */
const LATE_ERROR = new StoreError('STORE_UNAVAILABLE', 'the store ran the failure count after commandTimeout: nothing counted')

/** An address's failures in its window, as the memory store keeps them (updated in place). */
class Failures {
  count = 1
  readonly until: number
  constructor (until: number) { this.until = until }
  toString (): string { return String(this.count) }
}

/**
 * KEYS[1]: an address's count. ARGV: `+` (take one failure), limit, window ms, then optionally a
 * deadline (ms on the server's clock: see ServerClock); or `-` (give one back).
 * `+` returns [1, ms left in the window, count, now] when taken, [0, ms left, 0, now] when the
 * address is at its limit: nothing is counted then, so the window is not pushed on; [LATE, 0, 0, now]
 * when run after its deadline: the gateway gave up on it and checked the password as without a
 * limit, so it counts nothing (nobody would give it back). `now`: the server's clock (TIME). The
 * window starts at the first failure (the key's expiry, so no clock is compared between instances).
 * `-` returns [1, 0]; it has no deadline: it is sent only for a take answered in time, which it
 * must undo whenever it runs. A count that is not a positive integer (written by something else,
 * corrupt) is none, as in the memory store: a take starts a new window over it, a give-back leaves it.
 * A count without expiry (written so, or PERSISTed) gets the window's at a take: else it blocked for good.
 */
const LUA = `
local function count ()
  local v = redis.call('GET', KEYS[1])
  if v and string.match(v, '^[1-9]%d*$') then return tonumber(v) end
  return 0
end
if ARGV[1] == '-' then
  if count() > 0 then redis.call('DECR', KEYS[1]) end
  return {1, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[4])
if deadline and now > deadline then return {-1, 0, 0, now} end
local c = count()
if c == 0 then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[3])
  return {1, tonumber(ARGV[3]), 1, now}
end
local left = redis.call('PTTL', KEYS[1])
if left == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  left = tonumber(ARGV[3])
end
if c >= tonumber(ARGV[2]) then return {0, left, 0, now} end
return {1, left, redis.call('INCR', KEYS[1]), now}
`

const GIVEN_BACK = [1, 0]
const GIVE_BACK = ['-']

function local (data: LocalData, keys: readonly string[], args: readonly string[], now: number): number[] {
  const key = keys[0] as string
  const held = data.get(key)
  // None left (all given back) starts a new window, as the Lua does.
  const failures = held instanceof Failures && held.until > now && held.count > 0 ? held : undefined
  if (args[0] === '-') {
    if (failures !== undefined) failures.count--
    return GIVEN_BACK
  }
  if (args.length > 3 && now > Number(args[3])) return [LATE, 0, 0, now]
  if (failures === undefined) {
    const window = Number(args[2])
    data.set(key, new Failures(now + window), window)
    return [1, window, 1, now]
  }
  if (failures.count >= Number(args[1])) return [0, failures.until - now, 0, now]
  failures.count++
  return [1, failures.until - now, failures.count, now]
}

const failuresScript = defineScript<number[]>({ name: 'basic-auth-failures', lua: LUA, local })

export interface FailureLimitSettings {
  readonly limit: number
  readonly windowMs: number
  /** Whether a check's outcome is a failure to count (a wrong password); any other is given back. */
  readonly counts: (outcome: Outcome) => boolean
}

/**
 * Failed password checks per client address (after trustProxy), in a store: past `limit` in a
 * window, a request gets 429 before any check, whatever its password (no scrypt, and no answer
 * that tells a right password from a wrong one), until the window ends. A check takes one failure
 * before it runs, in one atomic store call, so that concurrent guesses cannot all pass a count read
 * before any of them failed; a check that does not fail gives it back. While the store fails,
 * passwords are checked as without a limit (logged, and counted by the store's error metric).
 * On Redis, a take carries the server time after which the gateway has given up on it
 * (commandTimeout, see ServerClock): one Redis runs later (queued behind a pause or a slow command)
 * counts nothing, as its check was not limited and nothing gives it back.
 */
export class FailureLimit {
  readonly #store: Store
  readonly #prefix: string
  readonly #limit: number
  readonly #take: readonly string[]
  readonly #counts: (outcome: Outcome) => boolean
  readonly #errors: StoreErrorLog
  /** Redis stores: the server's clock, for the takes' deadlines. */
  readonly #clock: ServerClock | undefined
  readonly #timeoutMs: number
  /**
   * Addresses at their limit, until when (performance.now()), known from the store's answers (a
   * refusal, or the failure that reached the limit): their pairs that checked out before are refused
   * too, without a store call. A refused request counts nothing, so only a failure given back could
   * end a block earlier than remembered. The time counts from when the call was made.
   */
  readonly #blocked = new LRUCache<string, number>({ max: MAX_BLOCKED })
  /**
   * Takes of this process not yet settled, by address: while some are, the count holds failures
   * that may be given back (right passwords checked at once), so neither a refusal nor the take that
   * reaches the limit blocks the address for the window; the store decides each attempt meanwhile.
   */
  readonly #pending = new Map<string, number>()

  /** `errors`: where the store's failures are logged (see storeErrorLog). */
  constructor (store: Store, settings: FailureLimitSettings, errors: StoreErrorLog) {
    this.#store = store
    // Routes with the same window share an address's count: their passwords are the same.
    this.#prefix = `basic-auth:failures:${settings.windowMs}:`
    this.#limit = settings.limit
    this.#take = ['+', String(settings.limit), String(settings.windowMs)]
    this.#counts = settings.counts
    this.#errors = errors
    this.#timeoutMs = store.commandTimeout ?? 0
    this.#clock = store.commandTimeout === undefined ? undefined : serverClock(store)
  }

  /** For a pair that checked out before: the 429 when its address is known to be at its limit. Synchronous; nothing to do while no address is. */
  blocked (req: GatewayRequest): AuthFailure | undefined {
    return this.#blocked.size === 0 ? undefined : this.#known(addressKey(req.clientIp, V6_PREFIX))
  }

  /** Runs `check` unless the client's address is at its limit, counting its failure. */
  attempt (req: GatewayRequest, check: () => Outcome | Promise<Outcome>): Outcome | Promise<Outcome> {
    const address = addressKey(req.clientIp, V6_PREFIX)
    const known = this.#known(address)
    if (known !== undefined) return known
    const key = this.#prefix + address
    const store = this.#store
    const sentAt = performance.now()
    if (store.runNow === undefined) {
      const clock = this.#clock
      const deadline = clock === undefined ? 0 : clock.deadline(sentAt, this.#timeoutMs)
      return store.run(failuresScript, [key], deadline === 0 ? this.#take : [...this.#take, deadline]).then(taken => {
        clock?.observe(sentAt, taken[3] as number)
        return this.#taken(address, key, taken, sentAt, check)
      }, (err: unknown) => this.#unlimited(err, check))
    }
    let taken: number[]
    try {
      taken = store.runNow(failuresScript, [key], this.#take)
    } catch (err) {
      return this.#unlimited(err, check)
    }
    return this.#taken(address, key, taken, sentAt, check)
  }

  #known (address: string): AuthFailure | undefined {
    const until = this.#blocked.get(address)
    if (until === undefined) return undefined
    const ms = until - performance.now()
    if (ms > 0) return this.#refusal(ms)
    this.#blocked.delete(address)
    return undefined
  }

  #taken (address: string, key: string, taken: readonly number[], sentAt: number, check: () => Outcome | Promise<Outcome>): Outcome | Promise<Outcome> {
    if (taken[0] === LATE) return this.#unlimited(LATE_ERROR, check)
    const ms = taken[1] as number
    const pending = this.#pending.get(address) ?? 0
    if (taken[0] === 0) {
      if (pending === 0) this.#blocked.set(address, sentAt + ms)
      return this.#refusal(sentAt + ms - performance.now())
    }
    // The failure that reaches the limit blocks the address from its answer on, remembered pairs included.
    const last = (taken[2] as number) >= this.#limit && pending === 0 ? sentAt + ms : 0
    this.#pending.set(address, pending + 1)
    const outcome = check()
    return outcome instanceof Promise
      ? outcome.then(o => this.#settled(address, key, last, o), (err: unknown) => { this.#release(address); throw err })
      : this.#settled(address, key, last, outcome)
  }

  /**
   * A failure is kept (the address blocked if it was the last one); any other outcome (a right
   * password, or no check run: the queue full, the client gone) gives it back. A give-back that
   * times out still runs when Redis gets to it; one never sent (the connection lost meanwhile)
   * leaves the failure counted until the window ends.
   */
  #settled (address: string, key: string, blockedUntil: number, outcome: Outcome): Outcome {
    this.#release(address)
    if (this.#counts(outcome)) {
      if (blockedUntil > 0) this.#blocked.set(address, blockedUntil)
      return outcome
    }
    const store = this.#store
    if (store.runNow === undefined) {
      store.run(failuresScript, [key], GIVE_BACK).catch((err: unknown) => { this.#errors.report(err) })
    } else {
      try { store.runNow(failuresScript, [key], GIVE_BACK) } catch (err) { this.#errors.report(err) }
    }
    return outcome
  }

  #release (address: string): void {
    const pending = (this.#pending.get(address) ?? 1) - 1
    if (pending === 0) this.#pending.delete(address)
    else this.#pending.set(address, pending)
  }

  #refusal (ms: number): AuthFailure {
    return { ...TOO_MANY, retryAfter: Math.max(1, Math.ceil(ms / 1000)) }
  }

  /** The store failed (or ran the take too late): the password is checked as without a limit, nothing counted. */
  #unlimited (err: unknown, check: () => Outcome | Promise<Outcome>): Outcome | Promise<Outcome> {
    this.#errors.report(err)
    return check()
  }
}
