/**
 * The three algorithms in JavaScript, for the memory store; decide-script.ts is the same logic in
 * Lua for Redis, operation for operation, so both stores give the same answers. A state is a short
 * string ("window count previous", "window count" or a theoretical arrival time) kept under the limit's key.
 */

/** A limit's parameters as the script receives them: algorithm code, quota, window (ms), bucket size. */
export type AlgorithmCode = 's' | 't' | 'f'

/** One limit's answer at `now`: whether one more request fits, and the state to store if it is charged. */
export interface Check {
  ok: boolean
  /** Requests that still fit before this one is charged (0 when rejected). */
  free: number
  /** Allowed: ms until the quota resets. Rejected: ms until a request may pass again. */
  ms: number
  state: string
  ttlMs: number
}

const EPSILON = 1e-6

/** Sliding-window counter: this window's count plus the previous window's, weighted by how much of it the sliding window still covers. */
export function slidingWindow (q: number, w: number, stored: string | undefined, now: number): Check {
  const idx = Math.floor(now / w)
  let cw = -1
  let c = 0
  let p = 0
  if (stored !== undefined) {
    const parts = stored.split(' ')
    cw = Number(parts[0]); c = Number(parts[1]); p = Number(parts[2])
  }
  if (cw !== idx) { p = cw === idx - 1 ? c : 0; c = 0 }
  const e = now - idx * w
  const est = p * (w - e) / w + c
  if (est + 1 <= q) return { ok: true, free: Math.floor(q - est), ms: w - e, state: `${idx} ${c + 1} ${p}`, ttlMs: 2 * w - e }
  // When the weighted previous count has decayed enough, in this window or (this one full) in the next.
  const ms = c + 1 <= q ? Math.ceil(w - w * (q - c - 1) / p - e) : Math.ceil(w - e + Math.max(0, w * (1 - (q - 1) / c)))
  return { ok: false, free: 0, ms, state: '', ttlMs: 0 }
}

/** Token bucket as GCRA: one theoretical arrival time; a request fits if it is less than a bucket ahead of now. */
export function tokenBucket (q: number, w: number, b: number, stored: string | undefined, now: number): Check {
  const t = w / q
  const tau = b * t
  let tat = stored === undefined ? now : Number(stored)
  if (tat < now) tat = now
  const free = Math.floor((tau - (tat - now)) / t + EPSILON)
  if (free >= 1) {
    const next = tat + t
    // Rounded to the µs as the Lua does, operation for operation: toFixed(3) and Lua's %.3f round an exact tie apart.
    const us = Math.floor(next * 1000 + 0.5)
    return { ok: true, free, ms: Math.ceil(next - now), state: `${Math.floor(us / 1000)}.${String(us % 1000).padStart(3, '0')}`, ttlMs: Math.ceil(next - now) }
  }
  return { ok: false, free: 0, ms: Math.ceil(tat + t - tau - now), state: '', ttlMs: 0 }
}

/** Fixed window: one count per window aligned on the epoch. */
export function fixedWindow (q: number, w: number, stored: string | undefined, now: number): Check {
  const idx = Math.floor(now / w)
  let c = 0
  if (stored !== undefined) {
    const parts = stored.split(' ')
    if (Number(parts[0]) === idx) c = Number(parts[1])
  }
  const e = now - idx * w
  const free = q - c
  return free >= 1 ? { ok: true, free, ms: w - e, state: `${idx} ${c + 1}`, ttlMs: w - e } : { ok: false, free: 0, ms: w - e, state: '', ttlMs: 0 }
}

export function check (alg: AlgorithmCode, q: number, w: number, b: number, stored: string | undefined, now: number): Check {
  return alg === 's' ? slidingWindow(q, w, stored, now) : alg === 't' ? tokenBucket(q, w, b, stored, now) : fixedWindow(q, w, stored, now)
}
