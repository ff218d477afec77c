import { closest, distance } from 'fastest-levenshtein'
import { printableKey } from './positions.ts'

/** ` (did you mean "x"?)` when a candidate is close enough to be a likely typo, else ''. */
export function didYouMean (word: string, candidates: Iterable<string>): string {
  const list = [...candidates]
  if (list.length === 0) return ''
  const best = closest(word, list)
  return distance(word, best) <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : ''
}

/** A key quoted for a message (printableKey), with what makes it odd: a non-ASCII character, a ${VAR} (keys are not interpolated). */
export function quoteKey (key: string): string {
  const shown = printableKey(key)
  const ascii = shown === key ? '' : ', which contains a non-ASCII character'
  const variable = key.includes('${') ? ' (variables are read in values, not keys)' : ''
  return `"${shown}"${ascii}${variable}`
}
