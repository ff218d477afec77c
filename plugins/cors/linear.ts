import { setFlagsFromString } from 'node:v8'
import { backtrackingProblem, emptyWaysProblem } from './backtracking.ts'

// V8's linear-time regexp engine: with this flag, `new RegExp(source, 'l')` compiles a pattern it
// can run (no lookaround, no backreference, no i or u flag, no large count) for it alone, so that
// V8's backtracking engine never compiles nor runs an origin pattern that one can: matching and
// compiling both take time linear in the pattern and the Origin. It changes no other regexp.
setFlagsFromString('--enable-experimental-regexp-engine')

/** Whether the flag took (V8 may ignore it): if not, every pattern gets the full check. */
const LINEAR = linear('a', '')

function linear (source: string, flags: string): boolean {
  try {
    RegExp(source, `${flags}l`)
    return true
  } catch {
    return false
  }
}

/** Checks done, by flags and source: a reload re-checks no pattern already checked. */
const checked = new Map<string, string | undefined>()
const MAX_CHECKED = 10_000
/** The longest origin pattern: an Origin is at most 300 characters, and a list of 40 names under 1,000. */
export const MAX_PATTERN = 2_000

/** `source` with `flags` as origins are matched: on the linear engine when it can run it. */
export function originRegExp (source: string, flags: string): RegExp {
  return LINEAR && linear(source, flags) ? RegExp(source, `${flags}l`) : RegExp(source, flags)
}

/**
 * Why `source` (a valid pattern with `flags`) could stall the gateway, if it could. One the linear
 * engine can run (originRegExp) gets only the checks every pattern gets (emptyWaysProblem); any
 * other the full check for backtracking (backtrackingProblem).
 */
export function slowMatchingProblem (source: string, flags: string): string | undefined {
  // The check and V8's compiler take time with the pattern's length (25,000 characters: seconds, on the serving thread at a reload).
  if (source.length > MAX_PATTERN) return `is ${source.length} characters long, more than ${MAX_PATTERN}: split it into several entries`
  const key = `${flags}/${source}`
  if (checked.has(key)) return checked.get(key)
  const problem = LINEAR && linear(source, flags) ? emptyWaysProblem(source, flags) : backtrackingProblem(source, flags)
  if (checked.size >= MAX_CHECKED) checked.delete(checked.keys().next().value as string)
  checked.set(key, problem)
  return problem
}
