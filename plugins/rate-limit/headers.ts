import type { HeaderMap } from '../../src/index.ts'
import type { Plan } from './plans.ts'

export type HeaderMode = 'ietf' | 'legacy' | 'both' | 'none'

/**
 * A decision as the script returns it: [allowed, then per limit: ok, remaining, ms, and maybe the
 * store's time after them]. `ms` is the time to the quota's reset, or for a limit that rejected or
 * that this request left at 0, until a request may pass again (see Check in algorithms.ts).
 */
export type Decision = readonly number[]

export const allowed = (d: Decision): boolean => d[0] === 1

/** ms until a rejected request may be retried: the longest wait among the limits that rejected it. */
function retryMs (d: Decision): number {
  let ms = 0
  for (let i = 1; i + 2 < d.length; i += 3) if (d[i] === 0) ms = Math.max(ms, d[i + 2] as number)
  return ms
}

/**
 * The limit a response reports: the one that rejected it with the longest wait; else, of those this
 * request left at 0, the one with the longest wait (the next request's Retry-After); else the one
 * closest to its quota.
 */
function reported (plan: Plan, d: Decision): number {
  let best = 0
  let rank = 3
  let score = 0
  for (let i = 0; i < plan.limits.length; i++) {
    const r = d[3 * i + 2] as number
    // 0: rejected, 1: left at 0, each by its wait, longest first; 2: by what remains of its quota.
    const k = d[3 * i + 1] === 0 ? 0 : r === 0 ? 1 : 2
    const s = k === 2 ? r / (plan.limits[i]?.requests as number) : -(d[3 * i + 3] as number)
    if (k < rank || (k === rank && s < score)) { best = i; rank = k; score = s }
  }
  return best
}

/** Writes RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers), X-RateLimit-* or both into `h`. */
export function writeQuotaHeaders (h: HeaderMap, mode: HeaderMode, plan: Plan, d: Decision): void {
  if (mode === 'none' || plan.limits.length === 0) return
  const i = reported(plan, d)
  const limit = plan.limits[i] as Plan['limits'][number]
  const r = d[3 * i + 2] as number
  const t = Math.ceil((d[3 * i + 3] as number) / 1000)
  if (mode !== 'legacy') {
    h['ratelimit-policy'] = plan.policyHeader
    h.ratelimit = limit.remainingItem + r + ';t=' + t
  }
  if (mode !== 'ietf') {
    h['x-ratelimit-limit'] = String(limit.requests)
    h['x-ratelimit-remaining'] = String(r)
    h['x-ratelimit-reset'] = String(t)
  }
}

/**
 * The 429 a rejected request gets: JSON like every gateway error, Retry-After in seconds. Its
 * headers go to `extra` (the request's extraResponseHeaders), as an allowed request's do: written
 * after response-headers' edits on both, so that they agree with each other and with the body.
 */
export function tooManyRequests (extra: HeaderMap, mode: HeaderMode, plan: Plan, d: Decision, requestId: string) {
  const retryAfter = Math.max(1, Math.ceil(retryMs(d) / 1000))
  const limit = plan.limits[reported(plan, d)] as Plan['limits'][number]
  extra['retry-after'] = String(retryAfter)
  writeQuotaHeaders(extra, mode, plan, d)
  return {
    status: 429,
    body: { error: 'rate_limited', message: limit.message, limit: limit.name, retryAfter, requestId }
  }
}
