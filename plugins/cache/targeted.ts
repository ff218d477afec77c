import { parseDictionary, Token } from 'structured-headers'
import type { HeaderMap } from '../../src/index.ts'

/**
 * Targeted cache control (RFC 9213): the headers this cache reads its policy from. When a field
 * of `targets` (in their order, e.g. CDN-Cache-Control) has a valid, non-empty value, its
 * directives stand in for Cache-Control and Expires is ignored; else the headers as they came.
 * The response itself is stored and sent on unchanged, targeted fields included.
 */
export function policyHeaders (headers: HeaderMap, targets: readonly string[]): HeaderMap {
  for (const name of targets) {
    const value = headers[name]
    const directives = value === undefined ? undefined : asCacheControl(Array.isArray(value) ? value.join(', ') : value)
    if (directives === undefined) continue
    const policy: HeaderMap = { ...headers, 'cache-control': directives }
    delete policy.expires
    return policy
  }
  return headers
}

/**
 * A targeted field (a Structured Fields dictionary, RFC 9213 2.1) as Cache-Control text, or
 * undefined when it does not parse or is empty. A directive whose value is not what Cache-Control
 * would take (a decimal or negative max-age, a string) is left out, as 2.1 asks; but `private` and
 * `no-cache`, whose field lists come as strings (`private="x-user"`), see fieldList.
 */
function asCacheControl (value: string): string | undefined {
  let dictionary
  try { dictionary = parseDictionary(value) } catch { return undefined }
  if (dictionary.size === 0) return undefined
  const directives: string[] = []
  for (const [name, [v]] of dictionary) {
    if (v === true) directives.push(name)
    else if (FIELD_LISTS.has(name)) { if (v !== false) directives.push(fieldList(name, v)) }
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 0) directives.push(`${name}=${v}`)
  }
  return directives.join(', ')
}

const FIELD_LISTS = new Set(['private', 'no-cache'])
/** Field names (tokens) apart by commas: what the quoted form of Cache-Control holds. */
const NAMES = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/

/**
 * `private` or `no-cache` with a value: a string (or a token) listing field names is its qualified
 * form, which withholds those fields (`private="x-user"`); any other value is read as the bare
 * directive, the safest reading (the response is not shared, or always revalidated).
 */
function fieldList (name: string, v: unknown): string {
  const list = typeof v === 'string' ? v : v instanceof Token ? v.toString() : undefined
  return list !== undefined && NAMES.test(list) ? `${name}="${list}"` : name
}
