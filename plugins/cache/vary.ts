import { dashedForm, keyPart, MAX_UNDERSCORED } from './cache-key.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

/** The header names a Vary value lists, lower-cased; ['*'] when it holds `*`. */
export function varyNames (vary: string | string[] | undefined): string[] {
  if (vary === undefined) return []
  const names = String(vary).toLowerCase().split(',').map(n => n.trim()).filter(n => n !== '')
  return names.includes('*') ? ['*'] : [...new Set(names)].sort()
}

// List fields with case-insensitive values (RFC 9110 12.5): whitespace around their commas and
// case mean nothing. Other fields are compared as sent (ends trimmed): RFC 9111 4.1 allows only
// normalizations known to keep a field's meaning.
const CASELESS_LISTS = new Set(['accept', 'accept-charset', 'accept-encoding', 'accept-language'])

// Such a list without white space around its commas, lower-cased. Not a regex of \s* around a comma:
// it scanned a client's run of spaces from each of them, quadratic (16 KB of them cost ~90 ms per request).
const caselessList = (v: string): string => v.split(',').map(item => item.trim()).join(',').toLowerCase()

/**
 * The secondary key of a request for these names: values normalized where that keeps their
 * meaning, so equivalent requests share it; a field absent is `|h:<name>`, apart from one sent
 * empty (RFC 9111 4.1). `host`: the client's Host, which the gateway's request headers do not carry.
 * (Keys before were `|v:<name>=<value>`, absent as empty: those entries are not found again.)
 */
export function variantKey (names: readonly string[], headers: Headers, host?: string | string[]): string {
  let k = ''
  for (const name of names) {
    const raw: unknown = name === 'host' ? host : headers[name]
    // Only strings and lists: a name such as `__proto__` or `constructor` reads what the object inherits.
    const v = typeof raw === 'string' ? raw.trim() : Array.isArray(raw) ? raw.join(',').trim() : undefined
    k += v === undefined ? `|h:${name}` : `|h:${name}=${keyPart(CASELESS_LISTS.has(name) ? caselessList(v) : v)}`
  }
  return k
}

/**
 * A name the response varies on that the request going upstream holds in another spelling, which
 * CGI, WSGI, Rack and PHP servers read as it (`X_Tenant` for `Vary: X-Tenant`): a variant keyed on
 * the one spelling would be served to requests the upstream read otherwise. For a response to
 * store: a request's names without `_` cost a test for one (unless a Vary name has one); one with
 * more than MAX_UNDERSCORED names with `_` is taken for one that holds such a spelling.
 */
export function otherSpelling (vary: string | string[] | undefined, headers: Headers): string | undefined {
  if (vary === undefined) return undefined
  const names = varyNames(vary)
  if (names.length === 0) return undefined
  const byForm = new Map(names.map(n => [dashedForm(n), n]))
  const underscored = names.some(n => n.includes('_'))
  let seen = 0
  for (const name in headers) {
    const has = name.includes('_')
    if (!underscored && !has) continue
    if (has && ++seen > MAX_UNDERSCORED) return names[0]
    const v = byForm.get(dashedForm(name))
    if (v !== undefined && v !== name) return v
  }
  return undefined
}
