import CachePolicy from 'http-cache-semantics'
import type { HeaderMap } from '../../src/index.ts'
import { isQualified, parseCacheControl, withheldFields, type Directives } from './cache-control.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

const POLICY_OPTIONS = { shared: true }
const TOKEN = /^[\w!#$%&'*+.^`|~-]+$/

/**
 * Why a response may not be stored by a shared cache, or undefined when it may. The RFC 9111 3
 * rules (method, status understood, no-store, private, Authorization without public/s-maxage/
 * must-revalidate, explicit freshness or a status cacheable by default) come from
 * http-cache-semantics; the rest is what it leaves out or where this cache is stricter.
 */
export function unstorableReason (method: string, url: string, request: Headers, status: number, response: HeaderMap, statuses: ReadonlySet<number>): string | undefined {
  if (!statuses.has(status)) return 'status'
  if (response['content-range'] !== undefined) return 'partial'
  const headers = libraryView(flat(response))
  const policy = new CachePolicy({ method, url, headers: requestView(flat(request)) }, { status, headers }, POLICY_OPTIONS)
  if (!policy.storable()) return 'uncacheable'
  if (headers.vary !== undefined && headers.vary.split(',').some(n => n.trim() === '*')) return 'vary-star'
  // A Set-Cookie belongs to one client: such a response is stored (without the cookie) only when
  // declared public, or when the cookie is named private or no-cache.
  const cc = parseCacheControl(response['cache-control'])
  if (response['set-cookie'] !== undefined && cc.public === undefined && !withheldFields(cc).includes('set-cookie')) return 'set-cookie'
  return undefined
}

/**
 * Cache-Control as http-cache-semantics should read it, without what this cache understands
 * better. `must-understand` (RFC 9111 5.2.2.3): a cache that implements the status code's caching
 * rules ignores `no-store` beside it (which statuses the rules are known for is the library's own
 * check, still applied). Qualified `private="…"` and `no-cache="…"` only withhold their fields,
 * which the cache leaves out of what it stores (the library reads them as the bare directives).
 */
function libraryView (headers: Record<string, string>): Record<string, string> {
  if (headers['cache-control'] === undefined) return headers
  const cc = parseCacheControl(headers['cache-control'])
  const noStore = cc['must-understand'] !== undefined && cc['no-store'] !== undefined
  return { ...headers, 'cache-control': asText(cc, name => {
    if (name === 'no-store') return !noStore
    // Qualified: left to withhold(); a field form that counts as bare is given as bare (the library reads private="" as absent).
    if (name === 'private' || name === 'no-cache') return isQualified(cc, name) ? false : 'bare'
    return true
  }) }
}

/** The request's headers for the library: its Cache-Control as this cache parsed it (see asText). */
const requestView = (headers: Record<string, string>): Record<string, string> =>
  headers['cache-control'] === undefined ? headers : { ...headers, 'cache-control': asText(parseCacheControl(headers['cache-control'])) }

/**
 * Directives as Cache-Control text, for http-cache-semantics: it matches names as sent and splits
 * quoted values at their commas, so `Private`, `NO-STORE` or `x="a, private"` given as they came
 * would be misread (names are case-insensitive, RFC 9111 5.2). `keep` says which go in, and which
 * as bare names.
 */
function asText (cc: Directives, keep: (name: string) => boolean | 'bare' = () => true): string {
  const kept: string[] = []
  for (const name in cc) {
    const k = keep(name)
    if (k === false) continue
    const v = cc[name] as string | true
    kept.push(v === true || k === 'bare' ? name : TOKEN.test(v) ? `${name}=${v}` : `${name}="${v.replaceAll('"', '')}"`)
  }
  return kept.join(', ')
}

/** http-cache-semantics takes one string per header. */
function flat (h: Headers): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k in h) { const v = h[k]; if (v !== undefined) out[k] = Array.isArray(v) ? v.join(k === 'set-cookie' ? '\n' : ', ') : v }
  return out
}

/** Takes out of headers to be stored the fields qualified `private` and `no-cache` withhold from other clients (`policy`: the headers the rules are read from). */
export function withhold (headers: Record<string, string | string[]>, policy: HeaderMap): void {
  for (const name of withheldFields(parseCacheControl(policy['cache-control']))) delete headers[name]
}

/**
 * What of a 304 belongs to the client whose request revalidated the entry and is not stored for
 * others: its Set-Cookie and the fields qualified `private` and `no-cache` withhold.
 */
export function ownFields (fresh: HeaderMap, policy: HeaderMap): HeaderMap {
  const own: HeaderMap = {}
  for (const name of ['set-cookie', ...withheldFields(parseCacheControl(policy['cache-control']))]) if (fresh[name] !== undefined) own[name] = fresh[name]
  return own
}
