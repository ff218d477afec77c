/** Cache-Control directives: lower-case names; `true` for a bare directive, else the unquoted value. */
export type Directives = Readonly<Record<string, string | true>>

const EMPTY: Directives = Object.freeze({})

/** Parses Cache-Control (several fields joined). Quoted commas (no-cache="a, b") are kept inside the value. */
export function parseCacheControl (value: string | string[] | undefined): Directives {
  if (value === undefined) return EMPTY
  const text = Array.isArray(value) ? value.join(',') : value
  const out: Record<string, string | true> = {}
  for (const part of text.match(/(?:[^,"]|"[^"]*")+/g) ?? []) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (name === '') continue
    out[name] = eq === -1 ? true : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')
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

/** A delta-seconds value; one too large to represent counts as 2^31 (RFC 9111 1.2.2). */
export function deltaSeconds (v: string): number | undefined {
  const n = Number.parseInt(v, 10)
  return Number.isNaN(n) || n < 0 ? undefined : Math.min(n, 2147483648)
}

/** The request's directives; `Pragma: no-cache` counts as `no-cache` when there is no Cache-Control (RFC 9111 5.4). */
export function requestDirectives (headers: Readonly<Record<string, string | string[] | undefined>>): Directives {
  const cc = headers['cache-control']
  if (cc !== undefined) return parseCacheControl(cc)
  const pragma = headers.pragma
  return pragma !== undefined && /no-cache/i.test(String(pragma)) ? { 'no-cache': true } : EMPTY
}
