import { normalizePath } from './normalize-path.ts'

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
  /** The literal text before the first param or wildcard. */
  readonly literalPrefix: string
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>
const PARAM_RE = /^:([A-Za-z_][A-Za-z0-9_]*)$/
const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g

export function compilePathPattern (source: string): PathPattern | string {
  const segments = source.split('/').slice(1)
  const wildcard = segments[segments.length - 1] === '*'
  if (wildcard) segments.pop()
  if (segments.includes('*')) return '"*" may only be the last segment'
  const params: string[] = []
  const literalPrefixParts: string[] = []
  let literalChars = 0
  let inLiteralPrefix = true
  for (const seg of segments) {
    const p = PARAM_RE.exec(seg)
    if (p !== null) {
      if (params.includes(p[1] as string)) return `param ":${p[1] as string}" appears twice`
      params.push(p[1] as string)
      inLiteralPrefix = false
    } else if (seg.startsWith(':')) {
      return `"${seg}" is not a valid param name`
    } else {
      literalChars += seg.length
      if (inLiteralPrefix) literalPrefixParts.push(seg)
    }
  }
  const base = '/' + segments.join('/')
  if (params.length === 0 && normalizePath(base === '/' ? '/' : base) !== base) return 'is not a normalized path (no //, . or .. segments, or escapes of unreserved characters)'
  if (wildcard) params.push('*')
  const kind = !wildcard && params.length === 0 ? 2 : wildcard ? 0 : 1
  const rank = [kind, literalChars, segments.length] as const
  const literalPrefix = '/' + literalPrefixParts.join('/')

  if (params.length === 0) {
    return { source, rank, params, literalPrefix, match: (path: string) => path === base ? NO_PARAMS : undefined }
  }
  if (params.length === 1 && wildcard) {
    // Plain prefix: the hot case, matched without a regex.
    const root = base === '/' ? '' : base
    const withSlash = root + '/'
    return {
      source, rank, params, literalPrefix,
      match: (path: string) => path === root ? { '*': '' } : path.startsWith(withSlash) ? { '*': path.slice(withSlash.length) } : undefined
    }
  }
  const body = segments.map(s => PARAM_RE.test(s) ? '/([^/]+)' : '/' + s.replace(REGEX_SPECIAL, '\\$&')).join('')
  const re = new RegExp('^' + (body === '/' ? '' : body) + (wildcard ? '(?:/(.*))?$' : '$'))
  return {
    source, rank, params, literalPrefix,
    match: (path: string) => {
      const m = re.exec(path)
      if (m === null) return undefined
      const out: Record<string, string> = {}
      for (let i = 0; i < params.length; i++) out[params[i] as string] = m[i + 1] ?? ''
      return out
    }
  }
}

/** Compiles a rewrite template (`/v2/accounts/:id/*`) into a function of the match's params. */
export function compileRewrite (template: string, available: readonly string[]): ((params: Record<string, string>) => string) | string {
  const parts = template.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/)
  for (const part of parts) {
    const name = part === '*' ? '*' : part.startsWith(':') ? part.slice(1) : undefined
    if (name !== undefined && !available.includes(name)) return `uses ${part === '*' ? '"*"' : `":${name}"`}, which match.path does not define`
  }
  return params => {
    let out = ''
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string
      out += i % 2 === 0 ? part : params[part === '*' ? '*' : part.slice(1)] ?? ''
    }
    return out.replace(/\/{2,}/g, '/').replace(/(.)\/$/, (_m, c: string) => template.endsWith('/') ? c + '/' : c)
  }
}
