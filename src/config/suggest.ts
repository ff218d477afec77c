import { closest, distance } from 'fastest-levenshtein'
import { printableKey } from './positions.ts'

/** ` (did you mean "x"?)` when a candidate is close enough to be a likely typo, else ''. */
export function didYouMean (word: string, candidates: Iterable<string>): string {
  const best = nearest(word, candidates)
  return best === undefined ? '' : ` (did you mean "${best}"?)`
}

/** The candidate close enough to `word` to be what a typo of it meant, if any. */
export function nearest (word: string, candidates: Iterable<string>): string | undefined {
  const most = Math.max(2, Math.floor(word.length / 3))
  // A candidate whose length differs by more is further than that: not measured.
  const near = [...candidates].filter(c => Math.abs(c.length - word.length) <= most)
  if (near.length === 0) return undefined
  const best = closest(word, near)
  return distance(word, best) <= most ? best : undefined
}

/**
 * didYouMean against one list for many words, as a generated config's thousands of references: each
 * word measured once, and only the first `limit` words (each one still a problem, reported without
 * a hint). Every word against every name took seconds for thousands of each, a reload's stall.
 */
export function suggester (candidates: readonly string[], limit = 100): (word: string) => string {
  const said = new Map<string, string>()
  return word => {
    let hint = said.get(word)
    if (hint === undefined) said.set(word, hint = said.size < limit ? didYouMean(word, candidates) : '')
    return hint
  }
}

/** A key quoted for a message (printableKey), with what makes it odd: a non-ASCII character, a ${VAR} (keys are not interpolated). */
export function quoteKey (key: string): string {
  const shown = printableKey(key)
  const ascii = shown === key ? '' : ', which contains a non-ASCII character'
  const variable = key.includes('${') ? ' (variables are read in values, not keys)' : ''
  return `"${shown}"${ascii}${variable}`
}

/**
 * Every property name the schemas define, at any depth: the keys a config may hold somewhere. A
 * word written without its colon is taken for a key only if it is one of them.
 */
export function schemaKeys (schemas: Iterable<unknown>): Set<string> {
  const keys = new Set<string>()
  const seen = new Set<object>()
  const walk = (s: unknown): void => {
    if (typeof s !== 'object' || s === null || seen.has(s)) return
    seen.add(s)
    const properties = (s as { properties?: unknown }).properties
    if (typeof properties === 'object' && properties !== null && !Array.isArray(properties)) for (const k of Object.keys(properties)) keys.add(k)
    for (const v of Object.values(s)) walk(v)
  }
  for (const s of schemas) walk(s)
  return keys
}
