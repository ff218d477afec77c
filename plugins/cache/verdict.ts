import { seconds, type Directives } from './cache-control.ts'
import { currentAge, type Entry, type FreshnessRules } from './entry.ts'

/**
 * The route's stale windows, read when an entry is served (a reload changes them for every entry):
 * the operator's out-of-band permission to serve stale (RFC 9111 4.2.4), which must-revalidate,
 * proxy-revalidate, s-maxage and no-cache withhold.
 */
export type StaleWindows = Pick<FreshnessRules, 'staleIfError' | 'staleWhileRevalidate'>

/** What a hit is answered with (RFC 9111 4), and how the cache decided. */
export type Verdict = 'fresh' | 'stale-ok' | 'swr' | 'request' | 'stale'

// Ages are in seconds, to the millisecond. max-age and max-stale ("no more than") and min-fresh
// ("at least") include their bound; the entry is fresh while its age is below its lifetime, and
// stale-while-revalidate and stale-if-error hold while it is stale by less than theirs (so 0, the
// directive absent, never holds).

/** RFC 9111 4.2 and 5.2.1: may this entry answer a request with these directives at `now` (ms), and how. */
export function evaluate (e: Entry, rcc: Directives, now: number, route: StaleWindows): Verdict {
  const age = currentAge(e, now)
  if (rcc['no-cache'] !== undefined) return 'request'
  const maxAge = seconds(rcc, 'max-age')
  if (maxAge !== undefined && age > maxAge) return 'request'
  const minFresh = seconds(rcc, 'min-fresh')
  if (minFresh !== undefined && e.lifetime - age < minFresh) return 'request'
  if (age < e.lifetime) return 'fresh'
  if (e.mustRevalidate) return 'stale'
  const maxStale = seconds(rcc, 'max-stale')
  if (maxStale !== undefined && age - e.lifetime <= maxStale) return 'stale-ok'
  if (age - e.lifetime < Math.max(e.swr, route.staleWhileRevalidate)) return 'swr'
  return 'stale'
}

/**
 * RFC 5861 4: may `e`, at `age` seconds, answer in place of an error? The response's or the route's
 * stale-if-error, or the request's (the client accepts that much staleness then), never past must-revalidate.
 */
export function staleIfErrorAllows (e: Entry, age: number, rcc: Directives, route: StaleWindows): boolean {
  if (e.mustRevalidate) return false
  const stale = age - e.lifetime
  const asked = seconds(rcc, 'stale-if-error')
  return stale < Math.max(e.sie, route.staleIfError) || (asked !== undefined && stale <= asked)
}
