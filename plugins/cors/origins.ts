const REGEX = /^\/(.+)\/([imsu]*)$/
const LABELS = '[a-z0-9-]+(?:\\.[a-z0-9-]+)*'
/** A wildcard as documented: an optional scheme, `*` for the host's first labels (or the whole host), the rest fixed. */
const WILDCARD = /^(?:([a-z][a-z0-9+.-]*):\/\/)?\*((?:\.[^*]*)?)$/
/** Origins no config means to let in (`.invalid` is reserved): a pattern that matches them lets in any site. */
const FOREIGN = ['https://example.invalid', 'http://example.invalid']
/**
 * Sites anyone could register, under common top-level domains (and one public suffix of two labels):
 * a pattern that matches one lets in every such site (`/^https:\/\/[a-z0-9-]+\.com$/`). Labels long
 * and short, of letters, with a hyphen, of digits: for the classes and counts such patterns use.
 */
const REGISTRABLE = ['https', 'http'].flatMap(scheme => ['com', 'net', 'org', 'io', 'dev', 'app', 'co.uk']
  .flatMap(tld => ['zzportcullisprobe', 'zz-portcullis-probe', 'zzq', '909'].map(label => `${scheme}://${label}.${tld}`)))
const ANY_SITE = "with credentials: true, any site could read your users' responses: list the origins"
/** A host name's characters; a `.` meant literally follows one or a token standing for some (`]`, `)`, a quantifier), and precedes one or a group's end. */
const HOST_CHAR = /[A-Za-z0-9-]/
const BEFORE_DOT = /[A-Za-z0-9\-\])+*?}]/
const AFTER_DOT = /[A-Za-z0-9-)]/

/** What an origin list allows, compiled once: any origin, exact ones (a Set), patterns. */
export interface OriginMatcher {
  readonly any: boolean
  allows (origin: string): boolean
}

/**
 * What is wrong with an origin entry: one no browser's Origin could ever equal (a path, a default
 * port, no scheme, a host not in punycode, a mistyped or unanchored regular expression), or, with
 * credentials, one that lets in any site (`*`, `https://*`, `*.com`, a regular expression as broad).
 */
export function originProblem (entry: string, credentials: boolean): string | undefined {
  if (entry === '*') return credentials ? `\`*\` ${ANY_SITE}` : undefined
  if (entry === 'null') return undefined
  const regex = REGEX.exec(entry)
  if (regex !== null) return regexProblem(regex[1] as string, regex[2] as string, credentials)
  // No origin starts with a slash: a mistyped regular expression would otherwise allow nothing, silently.
  if (entry.startsWith('/')) return 'a regular expression is written /pattern/flags, its flags among i, m, s and u'
  const written = entry.toLowerCase().replace(/\/$/, '')
  return written.includes('*') ? wildcardProblem(written, credentials) : exactProblem(written)
}

/** The origin a browser sends for `url` (host in punycode, no default port, no path), if it has one. */
function serialized (url: string): string | undefined {
  try {
    const u = new URL(url)
    return u.host === '' ? undefined : `${u.protocol}//${u.host}`
  } catch {
    return undefined
  }
}

function exactProblem (written: string): string | undefined {
  if (!written.includes('://')) {
    const hint = serialized(`https://${written}`)
    const write = hint === undefined ? 'scheme://host[:port]' : hint
    return `an origin has a scheme, so none equals this: write ${write} (only a wildcard, *.example.com, may leave it out to allow http and https)`
  }
  const origin = serialized(written)
  if (origin === undefined) return 'not an origin: write scheme://host[:port], e.g. https://app.example.com'
  return origin === written ? undefined : `browsers send this origin as ${origin} (no path, no default port, the host in punycode): write that`
}

function wildcardProblem (written: string, credentials: boolean): string | undefined {
  const match = WILDCARD.exec(written)
  if (match === null) return 'a wildcard is written *.example.com or https://*.example.com: one `*`, standing for the first labels of the host'
  const scheme = match[1]
  const rest = match[2] as string
  // The entry with `x` for `*` must be an origin as browsers send it.
  const probe = `${scheme ?? 'https'}://x${rest}`
  const origin = serialized(probe)
  if (origin === undefined) return 'not an origin once `*` is a host label: write *.example.com or https://*.example.com'
  if (origin !== probe) {
    const hint = origin.replace('://x', '://*')
    return `browsers send such origins as ${scheme === undefined ? hint.slice('https://'.length) : hint} (no path, no default port, the host in punycode): write that`
  }
  if (credentials && rest === '') return `a wildcard for the whole host ${ANY_SITE}`
  if (credentials && !rest.slice(1).split(':')[0]?.includes('.')) return `${written} lets in every site of a top-level domain: ${ANY_SITE}`
  return undefined
}

function regexProblem (source: string, flags: string, credentials: boolean): string | undefined {
  let regex: RegExp
  try { regex = RegExp(source, flags) } catch (err) { return (err as Error).message }
  if (!anchored(source)) {
    return 'a regular expression must be anchored, /^...$/, alternatives grouped inside (/^(?:a|b)$/): unanchored, it matches other sites too (/a\\.example\\.com/ matches https://a.example.com.evil.net)'
  }
  if (!credentials) return undefined
  const foreign = FOREIGN.find(origin => regex.test(origin))
  if (foreign !== undefined) return `it lets in any site (${foreign} matches): ${ANY_SITE}`
  const registrable = REGISTRABLE.find(origin => regex.test(origin))
  if (registrable !== undefined) return `it lets in sites anyone can register (${registrable} matches): ${ANY_SITE}`
  return unescapedDot(source)
}

/** What an origin entry likely lets in beyond what was meant: warned of without credentials (with them, originProblem refuses it). */
export function originWarning (entry: string): string | undefined {
  const regex = REGEX.exec(entry)
  return regex === null ? undefined : unescapedDot(regex[1] as string)
}

/**
 * An unescaped `.` between host characters (or after a class, group or quantifier, or before a
 * group's end) matches any character: `app.example` lets in `appxexample`, a site anyone can register.
 */
function unescapedDot (source: string): string | undefined {
  let inClass = false
  for (let i = 0; i < source.length; i++) {
    const c = source[i]
    if (c === '\\') i++
    else if (inClass) inClass = c !== ']'
    else if (c === '[') inClass = true
    else if (c === '.' && BEFORE_DOT.test(source[i - 1] ?? '') && AFTER_DOT.test(source[i + 1] ?? '')) {
      let from = i
      while (from > 0 && HOST_CHAR.test(source[from - 1] as string) && source[from - 2] !== '\\') from--
      let to = i + 1
      while (to < source.length && HOST_CHAR.test(source[to] as string)) to++
      const [before, after] = [source.slice(from, i), source.slice(i + 1, to)]
      return `an unescaped \`.\` matches any character: ${before}.${after} lets in ${before}x${after} too, which may be anyone's site; did you mean ${before}\\.${after}?`
    }
  }
  return undefined
}

/** Whether `^` starts the pattern and an unescaped `$` ends it, with no `|` between them outside a group or class. */
function anchored (source: string): boolean {
  if (!source.startsWith('^')) return false
  let depth = 0
  let inClass = false
  for (let i = 1; i < source.length; i++) {
    const c = source[i]
    if (c === '\\') i++
    else if (inClass) inClass = c !== ']'
    else if (c === '[') inClass = true
    else if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === '|' && depth === 0) return false
    else if (c === '$' && i === source.length - 1) return true
  }
  return false
}

/**
 * Compiles entries checked at load (originProblem). With `credentials`, the origin `null` (sandboxed
 * iframes, file: pages, some redirects: any page can send it) is allowed only when listed as `null`,
 * never by `*` or a pattern: echoing it with credentials would open the route to them all.
 */
export function compileOrigins (entries: readonly string[], credentials: boolean): OriginMatcher {
  const exact = new Set<string>()
  const patterns: RegExp[] = []
  let any = false
  for (const entry of entries) {
    const regex = REGEX.exec(entry)
    const written = entry.toLowerCase().replace(/\/$/, '')
    if (entry === '*') any = true
    else if (regex !== null) patterns.push(new RegExp(regex[1] as string, regex[2]))
    else if (written.includes('*')) patterns.push(wildcard(written))
    else exact.add(written)
  }
  const strictNull = credentials && !exact.has('null')
  return {
    any,
    allows (origin) {
      if (strictNull && origin === 'null') return false
      if (any || exact.has(origin)) return true
      for (const p of patterns) if (p.test(origin)) return true
      return false
    }
  }
}

/**
 * `*.example.com` (http or https) or `https://*.example.com`: `*` is one or more DNS labels.
 * `https://*` (refused with credentials) is any host of the scheme, an IPv6 address and a port too.
 */
function wildcard (entry: string): RegExp {
  if (entry.endsWith('://*')) return new RegExp(`^${entry.slice(0, -1).replace(/[.+]/g, '\\$&')}(?:${LABELS}|\\[[0-9a-f:.]+\\])(?::\\d+)?$`)
  const scheme = entry.includes('://') ? '' : 'https?://'
  const escaped = entry.split('*').map(s => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join(LABELS)
  return new RegExp(`^${scheme}${escaped}$`)
}
