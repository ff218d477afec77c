/**
 * The three algorithms in JavaScript, for the memory store; decide-script.ts is the same logic in
 * Lua for Redis, operation for operation, so both stores give the same answers. In memory a state
 * is a small object the store keeps under the limit's key and a charge updates in place; its
 * toString() is the string the Lua keeps in Redis ("window count previous", "window count" or a
 * theoretical arrival time).
 */

/** A limit's parameters as the script receives them: algorithm code, quota, window (ms), bucket size. */
export type AlgorithmCode = 's' | 't' | 'f'

/** One limit's answer at `now`: whether one more request fits. */
export interface Check {
  ok: boolean
  /** Requests that still fit before this one is charged (0 when rejected). */
  free: number
  /**
   * Rejected: ms until a request may pass again. Allowed: ms until the quota resets, all of it free
   * again (a sliding window: the end of the next window, when this request no longer weighs); for
   * the last request that fits (free 1), until the next one may pass (what its 429 would say).
   */
  ms: number
}

/** Sliding window: this window's index and count, and the previous window's count. */
export class SlidingState {
  window: number
  count: number
  previous: number
  constructor (window: number, count: number, previous: number) { this.window = window; this.count = count; this.previous = previous }
  toString (): string { return `${this.window} ${this.count} ${this.previous}` }
}

/** Fixed window: the window's index and count. */
export class FixedState {
  window: number
  count: number
  constructor (window: number, count: number) { this.window = window; this.count = count }
  toString (): string { return `${this.window} ${this.count}` }
}

/** Token bucket: the theoretical arrival time (ms, rounded to the µs). */
export class BucketState {
  tat: number
  constructor (tat: number) { this.tat = tat }
  toString (): string {
    // The Lua's %d.%03d: toFixed(3) and Lua's %.3f round an exact tie apart.
    const us = Math.round(this.tat * 1000)
    return `${Math.floor(us / 1000)}.${String(us % 1000).padStart(3, '0')}`
  }
}

export type State = SlidingState | FixedState | BucketState

/**
 * A charge's write: the state to store with its time to live, or undefined when the stored
 * state was updated in place and its expiry still holds (a window's state lives to a fixed
 * instant, whatever the request in the window that set it).
 */
export interface Write { state: State, ttlMs: number }

const EPSILON = 1e-6

/**
 * Whether a stored window counts as the current one at the clock's window `idx`: it, or the next
 * (a small step back across an edge). One further ahead was written while the clock ran ahead (a
 * step forward, then back): kept, it would refuse the key and say so for the whole step, so it is
 * no state and a new window is written over it. This bounds every wait and expiry to the next
 * window's (at most 2 windows; 3 sliding).
 */
function current (stored: number, idx: number): boolean {
  return stored === idx || stored === idx + 1
}

/** Sliding-window counter: this window's count plus the previous window's, weighted by how much of it the sliding window still covers. */
function slidingWindow (q: number, w: number, stored: SlidingState | undefined, now: number): Check {
  let idx = Math.floor(now / w)
  let c = 0
  let p = 0
  if (stored !== undefined) {
    // The next window (the clock stepped back across its edge) is still the current one: its counts
    // hold until the clock passes it (e < 0 until it starts; the previous window weighs whole till
    // then). Further ahead is no state: see current().
    if (current(stored.window, idx)) { idx = stored.window; c = stored.count; p = stored.previous } else if (stored.window === idx - 1) p = stored.count
  }
  const e = now - idx * w
  const est = p * (w - Math.max(e, 0)) / w + c
  if (est + 1 > q) return { ok: false, free: 0, ms: slidingWait(q, w, c, p, e) }
  const free = Math.floor(q - est)
  // The last request that fits: its reset is when the next one could pass, as its 429 would say.
  // Else when every request counted has decayed: this one, counted in this window, weighs until
  // the next window ends (the key's expiry too).
  return { ok: true, free, ms: free === 1 ? slidingWait(q, w, c + 1, p, e) : 2 * w - e }
}

/** ms until one more request fits, `e` into a window holding `c` with `p` in the previous one: when the weighted `p` has decayed enough, in this window or (this one full) in the next. */
function slidingWait (q: number, w: number, c: number, p: number, e: number): number {
  return c + 1 <= q ? Math.ceil(w - w * (q - c - 1) / p - e) : Math.ceil(w - e + Math.max(0, w * (1 - (q - 1) / c)))
}

/** Counts an allowed request; a new window's state lives to the end of the next window (2w - e, as the Lua's PX). */
function chargeSliding (w: number, stored: SlidingState | undefined, now: number): Write | undefined {
  const idx = Math.floor(now / w)
  // Never a window moved back: it would turn the counts of every limit sharing the key into a decaying previous.
  if (stored !== undefined && current(stored.window, idx)) { stored.count++; return undefined }
  const p = stored?.window === idx - 1 ? stored.count : 0
  return { state: new SlidingState(idx, 1, p), ttlMs: 2 * w - (now - idx * w) }
}

/** Token bucket as GCRA: one theoretical arrival time; a request fits if it is less than a bucket ahead of now. */
function tokenBucket (q: number, w: number, b: number, stored: BucketState | undefined, now: number): Check {
  const t = w / q
  const tau = b * t
  const tat = stored === undefined || stored.tat < now ? now : stored.tat
  const free = Math.floor((tau - (tat - now)) / t + EPSILON)
  // The last token: its reset is when the next one comes (the arrival time one interval on), as its 429 would say.
  if (free >= 1) return { ok: true, free, ms: free === 1 ? Math.ceil(tat + 2 * t - tau - now) : Math.ceil(tat + t - now) }
  return { ok: false, free: 0, ms: Math.ceil(tat + t - tau - now) }
}

/** Moves the arrival time one emission interval on; it lives until then, so every charge sets its expiry. */
function chargeBucket (q: number, w: number, stored: BucketState | undefined, now: number): Write {
  const next = (stored === undefined || stored.tat < now ? now : stored.tat) + w / q
  // Rounded to the µs as the Lua does, operation for operation.
  const tat = Math.floor(next * 1000 + 0.5) / 1000
  const state = stored ?? new BucketState(tat)
  state.tat = tat
  // At least 1 ms: an interval under the µs rounds away (0 is no expiry in memory, an error in Redis).
  return { state, ttlMs: Math.max(1, Math.ceil(next - now)) }
}

/** Fixed window: one count per window aligned on the epoch. */
function fixedWindow (q: number, w: number, stored: FixedState | undefined, now: number): Check {
  // The next window (stepped back) is still the current one, until its end (e < 0 till it starts).
  const clock = Math.floor(now / w)
  const idx = stored !== undefined && current(stored.window, clock) ? stored.window : clock
  const c = stored?.window === idx ? stored.count : 0
  const e = now - idx * w
  const free = q - c
  return free >= 1 ? { ok: true, free, ms: w - e } : { ok: false, free: 0, ms: w - e }
}

/** Counts an allowed request; a new window's state lives to the window's end. */
function chargeFixed (w: number, stored: FixedState | undefined, now: number): Write | undefined {
  const idx = Math.floor(now / w)
  if (stored !== undefined && current(stored.window, idx)) { stored.count++; return undefined }
  return { state: new FixedState(idx, 1), ttlMs: w - (now - idx * w) }
}

/**
 * The longest wait a rejection of a limit gives: a window; two for a sliding one (a request weighs
 * until the end of the next window); a bucket's fill time (burst × interval; it waits an interval).
 */
export function longestWait (alg: AlgorithmCode, q: number, w: number, b: number): number {
  return alg === 't' ? Math.ceil(b * (w / q)) : alg === 's' ? 2 * w : w
}

/** One limit's answer from what the store holds under its key (anything but its own state counts as none). */
export function check (alg: AlgorithmCode, q: number, w: number, b: number, stored: unknown, now: number): Check {
  return alg === 's' ? slidingWindow(q, w, stored instanceof SlidingState ? stored : undefined, now)
    : alg === 't' ? tokenBucket(q, w, b, stored instanceof BucketState ? stored : undefined, now)
      : fixedWindow(q, w, stored instanceof FixedState ? stored : undefined, now)
}

/** Charges an allowed request to what check() read. */
export function charge (alg: AlgorithmCode, q: number, w: number, stored: unknown, now: number): Write | undefined {
  return alg === 's' ? chargeSliding(w, stored instanceof SlidingState ? stored : undefined, now)
    : alg === 't' ? chargeBucket(q, w, stored instanceof BucketState ? stored : undefined, now)
      : chargeFixed(w, stored instanceof FixedState ? stored : undefined, now)
}
