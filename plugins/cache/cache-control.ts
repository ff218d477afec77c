/** Cache-Control directives: lower-case names; `true` for a bare directive, else the unquoted value. */
export type Directives = Readonly<Record<string, string | true>>

export const NO_DIRECTIVES: Directives = Object.freeze({})
const FIELD_LISTS = new Set(['private', 'no-cache'])

/** Parses Cache-Control (several fields joined). Quoted commas (no-cache="a, b") are kept inside the value. */
export function parseCacheControl (value: string | string[] | undefined): Directives {
  if (value === undefined) return NO_DIRECTIVES
  const text = Array.isArray(value) ? value.join(',') : value
  const out: Record<string, string | true> = {}
  for (const part of text.match(/(?:[^,"]|"[^"]*")+/g) ?? []) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (name === '') continue
    const value = eq === -1 ? true : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')
    const before = out[name]
    // Repeated: the first counts (RFC 9111 4.2.1), but for private and no-cache, where the bare
    // form wins and field lists add up (the safest reading).
    if (before === undefined) out[name] = value
    else if (FIELD_LISTS.has(name)) out[name] = before === true || value === true ? true : `${before}, ${value}`
  }
  return out
}

/** Seconds of a delta-seconds directive; undefined when absent or not a number (`true` for max-stale alone is Infinity). */
export function seconds (d: Directives, name: string): number | undefined {
  const v = d[name]
  if (v === undefined) return undefined
  if (v === true) return name === 'max-stale' ? Infinity : undefined
  return deltaSeconds(v)
}

/** The longest freshness lifetime, seconds: a delta-seconds too large counts as 2^31 (RFC 9111 1.2.2), Expires alike. */
export const MAX_LIFETIME = 2 ** 31

/** A delta-seconds value (digits only: `1.5`, `-1`, `+60` are invalid); one too large to represent counts as MAX_LIFETIME. */
export function deltaSeconds (v: string): number | undefined {
  return /^\d+$/.test(v) ? Math.min(Number(v), MAX_LIFETIME) : undefined
}

/** The request's directives; `Pragma: no-cache` counts as `no-cache` when there is no Cache-Control (RFC 9111 5.4). */
export function requestDirectives (headers: Readonly<Record<string, string | string[] | undefined>>): Directives {
  const cc = headers['cache-control']
  if (cc !== undefined) return parseCacheControl(cc)
  const pragma = headers.pragma
  return pragma !== undefined && /no-cache/i.test(String(pragma)) ? { 'no-cache': true } : NO_DIRECTIVES
}

// Without these the stored body would be misread (or served to the wrong variant): a field form
// naming one counts as the bare directive.
const DESCRIBES_BODY = new Set(['content-encoding', 'content-type', 'content-length', 'content-range', 'transfer-encoding', 'vary'])

/** The field names of a directive's qualified form (`no-cache="a, b"`), lower-case; empty when bare. */
function fieldNames (v: string | true | undefined): string[] {
  if (typeof v !== 'string') return []
  return v.split(',').map(n => n.trim().toLowerCase()).filter(n => n !== '')
}

/**
 * Whether `private` or `no-cache` is in its qualified form (RFC 9111 5.2.2.4, 5.2.2.7), which
 * withholds the named fields rather than the whole response.
 */
export const isQualified = (d: Directives, name: 'private' | 'no-cache'): boolean => {
  const names = fieldNames(d[name])
  return names.length > 0 && !names.some(n => DESCRIBES_BODY.has(n))
}

/** Fields another client must not get from the stored response: those named by qualified `private` and `no-cache`. */
export const withheldFields = (d: Directives): string[] => (['private', 'no-cache'] as const)
  .flatMap(name => isQualified(d, name) ? fieldNames(d[name]) : [])
