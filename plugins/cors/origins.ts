const REGEX = /^\/(.+)\/([imsu]*)$/
const LABELS = '[a-z0-9-]+(?:\\.[a-z0-9-]+)*'

/** What an origin list allows, compiled once: any origin, exact ones (a Set), patterns. */
export interface OriginMatcher {
  readonly any: boolean
  allows (origin: string): boolean
}

/** What is wrong with an origin entry: a regular expression that does not compile, or is mistyped. */
export function originProblem (entry: string): string | undefined {
  const regex = REGEX.exec(entry)
  if (regex !== null) {
    try { RegExp(regex[1] as string, regex[2]) } catch (err) { return (err as Error).message }
    return undefined
  }
  // No origin starts with a slash: a mistyped regular expression would otherwise allow nothing, silently.
  return entry.startsWith('/') ? 'a regular expression is written /pattern/flags, its flags among i, m, s and u' : undefined
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
    if (entry === '*') any = true
    else if (regex !== null) patterns.push(new RegExp(regex[1] as string, regex[2]))
    else if (entry.includes('*')) patterns.push(wildcard(entry.toLowerCase()))
    else exact.add(entry.toLowerCase().replace(/\/$/, ''))
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

/** `*.example.com` (http or https) or `https://*.example.com`: `*` is one or more DNS labels. */
function wildcard (entry: string): RegExp {
  const scheme = entry.includes('://') ? '' : 'https?://'
  const escaped = entry.split('*').map(s => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join(LABELS)
  return new RegExp(`^${scheme}${escaped}$`)
}
