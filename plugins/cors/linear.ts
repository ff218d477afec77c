import { setFlagsFromString } from 'node:v8'
import { backtrackingProblem, emptyWaysProblem } from './backtracking.ts'

// V8's linear-time regexp engine: with the first flag, a regexp it can run (no lookaround, no
// backreference, no i or u flag, no large count) that backtracks more than 50000 times in one match
// is finished by it instead, so a pattern that backtracks badly costs milliseconds, not seconds. The
// second lets `new RegExp(source, 'l')` tell which patterns it can run. Process-wide, but ordinary
// regexps never backtrack that much and still run on the backtracking engine.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')
setFlagsFromString('--enable-experimental-regexp-engine')

/** Whether the flags took (V8 may ignore them): if not, every pattern gets the full check. */
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

/**
 * Why `source` (a valid pattern with `flags`) could stall the gateway, if it could. One the linear
 * engine can run is bounded by it but for what it misses (emptyWaysProblem); any other gets the
 * full check for backtracking (backtrackingProblem).
 */
export function slowMatchingProblem (source: string, flags: string): string | undefined {
  const key = `${flags}/${source}`
  if (checked.has(key)) return checked.get(key)
  const problem = LINEAR && linear(source, flags) ? emptyWaysProblem(source, flags) : backtrackingProblem(source, flags)
  if (checked.size >= MAX_CHECKED) checked.delete(checked.keys().next().value as string)
  checked.set(key, problem)
  return problem
}
