import type { HeaderMap } from '../../src/index.ts'

/** RFC 9211 Cache-Status parameters this cache reports. */
export interface StatusParams {
  readonly hit?: boolean
  readonly fwd?: 'uri-miss' | 'vary-miss' | 'stale' | 'request' | 'bypass' | 'method'
  readonly fwdStatus?: number
  readonly stored?: boolean
  /** Remaining freshness in seconds (negative when stale). */
  readonly ttl?: number
  readonly collapsed?: boolean
  readonly detail?: string
}

/**
 * A ttl in whole seconds, rounded; a stale one (ttl 0 or less: fresh while age < lifetime) at
 * most -1, never a 0 that reads as fresh.
 */
export const wholeTtl = (ttl: number): number => ttl <= 0 ? Math.min(-1, Math.round(ttl)) : Math.round(ttl)

/** Appends this cache's member to Cache-Status (caches further upstream come first). */
export function addCacheStatus (headers: HeaderMap, name: string, p: StatusParams): void {
  let v = name
  if (p.hit === true) v += '; hit'
  if (p.fwd !== undefined) v += `; fwd=${p.fwd}`
  if (p.fwdStatus !== undefined) v += `; fwd-status=${p.fwdStatus}`
  if (p.stored === true) v += '; stored'
  if (p.collapsed === true) v += '; collapsed'
  if (p.ttl !== undefined) v += `; ttl=${wholeTtl(p.ttl)}`
  if (p.detail !== undefined) v += `; detail=${p.detail}`
  const before = headers['cache-status']
  headers['cache-status'] = before === undefined ? v : `${String(before)}, ${v}`
}
