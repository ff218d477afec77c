import CachePolicy from 'http-cache-semantics'
import type { HeaderMap } from '../../src/index.ts'
import { parseCacheControl } from './cache-control.ts'

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
  const headers = understoodNoStore(flat(response))
  const policy = new CachePolicy({ method, url, headers: flat(request) }, { status, headers }, POLICY_OPTIONS)
  if (!policy.storable()) return 'uncacheable'
  if (headers.vary !== undefined && headers.vary.split(',').some(n => n.trim() === '*')) return 'vary-star'
  // A Set-Cookie belongs to one client: such a response is stored (without the cookie) only when declared public.
  if (response['set-cookie'] !== undefined && parseCacheControl(response['cache-control']).public === undefined) return 'set-cookie'
  return undefined
}

/**
 * `must-understand` (RFC 9111 5.2.2.3): a cache that implements the status code's caching rules
 * ignores `no-store` beside it; one that does not must not store. Which statuses the rules are
 * known for is the library's own check, still applied: only `no-store` is taken out here.
 */
function understoodNoStore (headers: Record<string, string>): Record<string, string> {
  const cc = parseCacheControl(headers['cache-control'])
  if (cc['must-understand'] === undefined || cc['no-store'] === undefined) return headers
  const kept: string[] = []
  for (const name in cc) {
    const v = cc[name] as string | true
    if (name !== 'no-store') kept.push(v === true ? name : TOKEN.test(v) ? `${name}=${v}` : `${name}="${v.replaceAll('"', '')}"`)
  }
  return { ...headers, 'cache-control': kept.join(', ') }
}

/** http-cache-semantics takes one string per header. */
function flat (h: Headers): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k in h) { const v = h[k]; if (v !== undefined) out[k] = Array.isArray(v) ? v.join(k === 'set-cookie' ? '\n' : ', ') : v }
  return out
}
