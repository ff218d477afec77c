import { normalizePath, routingForm } from './normalize-path.ts'

/**
 * A compiled `match.path`: exact (`/users`), prefix (`/users/*`: `/users` and everything below it),
 * or with params (`/users/:id`, `/users/:id/*`). Params match one non-empty segment.
 */
export interface PathPattern {
  readonly source: string
  /** Params of a match, or undefined when the path does not match. */
  match (path: string): Record<string, string> | undefined
  /** Precedence: higher wins. Exact beats params beats prefix, then longer literal text, then more segments. */
  readonly rank: readonly number[]
  readonly params: readonly string[]
  /** For each of params, the index of its segment (for "*", of the first one it takes): see paramsAt. */
  readonly segmentOf: readonly number[]
  /** The literal text before the first param or wildcard. */
  readonly literalPrefix: string
  /**
   * The segments every path it matches begins with (`/users/` has `users` and an empty one): the
   * literal text, or undefined for a param. What the routes are indexed by (route-list.ts).
   */
  readonly segments: ReadonlyArray<string | undefined>
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>
const PARAM_RE = /^:([A-Za-z_][A-Za-z0-9_]*)$/
const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g
const NOT_NORMALIZED = 'not normalized (no //, . or .. segments, or escapes of characters a path holds as they are: letters, digits and -._~!$&\'()*+,=:@)'
const NOT_NORMALIZED_REWRITE = 'not normalized (no //, . or .. segments, or escapes of unreserved characters)'
// What no request path holds once the gateway has read it: spaces, controls and non-ASCII bytes
// are refused (Node's HTTP/1 parser; normalizePath over HTTP/2), the path ends at `?`, and a `#` is refused (400).
const NOT_IN_PATH = /[^!-~]|[?#]/

/**
 * Why `path` (a pattern, or a rewrite's upstream path) has a character no request path has, or
 * undefined. `query`: what to say of a `?`. Non-ASCII text is sent percent-encoded as UTF-8,
 * which is then what a route matches: the hint spells it so.
 */
function badCharacter (path: string, query: string): string | undefined {
  const bad = NOT_IN_PATH.exec(path)?.[0]
  if (bad === undefined) return undefined
  if (bad === '?') return query
  if (bad === '#') return 'has a "#" (a fragment): never part of a request path (the gateway refuses one with 400)'
  const code = bad.charCodeAt(0)
  if (code <= 0x20 || code === 0x7f) return `has ${code === 0x20 ? 'a space' : 'a control character'}, which no request path has: write it percent-encoded (%${code.toString(16).toUpperCase().padStart(2, '0')})`
  const encoded = path.replace(/[\u0080-\uffff]+/g, text => Array.from(Buffer.from(text, 'utf8'), b => '%' + b.toString(16).toUpperCase()).join(''))
  return `has non-ASCII characters, which clients send percent-encoded as UTF-8: write "${encoded}"`
}

export function compilePathPattern (source: string): PathPattern | string {
  const bad = badCharacter(source, 'has a "?": a route matches the path only, the query after it is not matched')
  if (bad !== undefined) return bad
  const segments = source.split('/').slice(1)
  const wildcard = segments[segments.length - 1] === '*'
  if (wildcard) segments.pop()
  if (segments.some(s => s.includes('*'))) return `"*" may only be a whole last segment (did you mean "${wildcardSuggestion(segments, wildcard)}"?)`
  const params: string[] = []
  const segmentOf: number[] = []
  const literalPrefixParts: string[] = []
  let literalChars = 0
  let inLiteralPrefix = true
  for (const [i, seg] of segments.entries()) {
    const p = PARAM_RE.exec(seg)
    if (p !== null) {
      if (params.includes(p[1] as string)) return `param ":${p[1] as string}" appears twice`
      params.push(p[1] as string)
      segmentOf.push(i)
      inLiteralPrefix = false
    } else if (seg.startsWith(':')) {
      return `"${seg}" is not a valid param name`
    } else {
      literalChars += seg.length
      if (inLiteralPrefix) literalPrefixParts.push(seg)
    }
  }
  const base = '/' + segments.join('/')
  // Params too: a request path is normalized before matching, so `/:id/../x` could never match.
  if (normalizePath(base) !== base || routingForm(base) !== base) return NOT_NORMALIZED
  if (wildcard) { params.push('*'); segmentOf.push(segments.length) }
  const kind = !wildcard && params.length === 0 ? 2 : wildcard ? 0 : 1
  const rank = [kind, literalChars, segments.length] as const
  const literalPrefix = '/' + literalPrefixParts.join('/')
  // `//*` is `/*`: it matches every path, whose first segment is then anything.
  const leading = wildcard && base === '/' ? [] : segments.map(s => PARAM_RE.test(s) ? undefined : s)
  const common = { source, rank, params, segmentOf, literalPrefix, segments: leading }

  if (params.length === 0) {
    return { ...common, match: (path: string) => path === base ? NO_PARAMS : undefined }
  }
  if (params.length === 1 && wildcard) {
    // Plain prefix: the hot case, matched without a regex.
    const root = base === '/' ? '' : base
    const withSlash = root + '/'
    return {
      ...common,
      match: (path: string) => path === root ? { '*': '' } : path.startsWith(withSlash) ? { '*': path.slice(withSlash.length) } : undefined
    }
  }
  const body = segments.map(s => PARAM_RE.test(s) ? '/([^/]+)' : '/' + s.replace(REGEX_SPECIAL, '\\$&')).join('')
  const re = new RegExp('^' + body + (wildcard ? '(?:/(.*))?$' : '$'))
  return {
    ...common,
    match: (path: string) => {
      const m = re.exec(path)
      if (m === null) return undefined
      const out: Record<string, string> = {}
      for (let i = 0; i < params.length; i++) out[params[i] as string] = m[i + 1] ?? ''
      return out
    }
  }
}

/**
 * The params of a match of `pattern`, from `path` as forwarded: by position, as the route matched
 * its routingForm (the same segments, some escapes decoded). A param then holds what the client
 * sent (`a%3Ab`), which is what a rewrite puts in the upstream path.
 */
export function paramsAt (pattern: PathPattern, path: string): Record<string, string> {
  const segments = path.split('/')
  const out: Record<string, string> = {}
  for (let i = 0; i < pattern.params.length; i++) {
    const name = pattern.params[i] as string
    const at = (pattern.segmentOf[i] as number) + 1
    out[name] = name === '*' ? segments.slice(at).join('/') : segments[at] ?? ''
  }
  return out
}

// What was meant, most likely: `/users*` and `/users/**` are `/users/*`; `/users/*/orders` is
// `/users/:param/orders` (and `/users/*/orders/*` is `/users/:param/orders/*`).
function wildcardSuggestion (segments: string[], wildcard: boolean): string {
  if (segments.every(s => s === '*' || !s.includes('*'))) return '/' + [...segments.map(s => s === '*' ? ':param' : s), ...(wildcard ? ['*'] : [])].join('/')
  const i = segments.findIndex(s => s.includes('*'))
  const stem = (segments[i] as string).slice(0, (segments[i] as string).indexOf('*'))
  return '/' + [...segments.slice(0, i), ...(stem === '' ? [] : [stem]), '*'].join('/')
}

/**
 * Splits a template (`/v2/accounts/:id/*`) into its literal text (even indexes) and its :params
 * and "*" (odd indexes), or says which of them `available` lacks (`where`: who defines them).
 */
export function splitTemplate (template: string, available: readonly string[], where: string): string[] | string {
  const parts = template.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/)
  for (let i = 1; i < parts.length; i += 2) {
    const part = parts[i] as string
    const name = part === '*' ? '*' : part.slice(1)
    if (!available.includes(name)) return `uses ${part === '*' ? '"*"' : `":${name}"`}, which ${where} does not define`
    parts[i] = name
  }
  return parts
}

/**
 * Compiles a rewrite template (`/v2/accounts/:id/*`) into a function of the request path and the
 * match's params. The path it builds has no `//` a substitution made: an empty "*" takes its slash
 * with it (`/v2/*` for `/users` is `/v2`), and one ending with a slash drops the slash of the text
 * after it. A trailing slash is kept: a non-empty "*" ends as matched, and an empty last one
 * keeps its slash when the request path ends with one (`/v2/*` for `/users/` is `/v2/`), as stripPrefix does.
 */
export function compileRewrite (template: string, available: readonly string[]): ((path: string, params: Record<string, string>) => string) | string {
  const parts = splitTemplate(template, available, 'match.path')
  if (typeof parts === 'string') return parts
  const bad = badCharacter(template, 'has a "?": a rewrite is a path only, and the client\'s query is forwarded after it as sent')
  if (bad !== undefined) return bad
  // The "*" that ends the template, if one does: its index in parts.
  const lastStar = parts.length > 1 && parts[parts.length - 1] === '' && parts[parts.length - 2] === '*' ? parts.length - 2 : -1
  const rewrite = (path: string, params: Record<string, string>): string => {
    let out = ''
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string
      if (i % 2 === 0) {
        // Only a "*" ends with a slash here (params are non-empty and hold none).
        out += part.charCodeAt(0) === 47 && out.charCodeAt(out.length - 1) === 47 ? part.slice(1) : part
        continue
      }
      const value = params[part] ?? ''
      if (value === '' && out.charCodeAt(out.length - 1) === 47 && !(i === lastStar && path.charCodeAt(path.length - 1) === 47)) out = out.slice(0, -1)
      out += value
    }
    // An empty "*" took the template's only leading slash (`/*.json` for `/api`): the path keeps one.
    return out.charCodeAt(0) === 47 ? out : '/' + out
  }
  // What it builds for a "*" of text and for an empty one (`/x/..*` would make a dot segment).
  const sample = (star: string): string => rewrite('/x', Object.fromEntries(parts.filter((_, i) => i % 2 === 1).map(p => [p, p === '*' ? star : 'x'])))
  const normalized = (star: string): boolean => normalizePath(sample(star)) === sample(star)
  if (!normalized('x') || !normalized('')) return NOT_NORMALIZED_REWRITE
  // A "*" of a request path that ends with "/" (`/d/admin/`): the text after it begins a segment of its own.
  if (!normalized('x/')) return `"*" followed by "." makes a . or .. segment when the request path ends with "/" (a "*" of "x/" gives ${sample('x/')}), which the upstream would resolve to another path`
  return rewrite
}
