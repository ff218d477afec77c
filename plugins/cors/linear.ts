import { setFlagsFromString } from 'node:v8'
import { backtrackingProblem, counts, emptyWaysProblem, GROUP, LEGACY_ESCAPE, QUANTIFIER } from './backtracking.ts'

// V8's linear-time regexp engine: with this flag, `new RegExp(source, 'l')` compiles a pattern it
// can run (no lookaround, no backreference, no i or u flag, no large count) for it alone, so that
// V8's backtracking engine never compiles nor runs an origin pattern that one can. It runs a
// program (the pattern with each counted repetition copied out, a class one branch per range) over
// the Origin, stepping every branch alive at each character: time grows with the program's size
// times the Origin's length (linearSize). It changes no other regexp.
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

/**
 * The largest program (linearSize) of an origin pattern: about one step per character of a list of
 * names (40 of 20 characters: 900), so such a list up to MAX_PATTERN loads. At this size an Origin
 * of 300 characters that keeps every step busy (`a?` 1,000 times) takes about 30 ms of the serving
 * thread on Node 20, 8 ms on Node 24; a list of names, microseconds.
 */
export const MAX_PROGRAM = 2_000

/**
 * `source` with `flags` as origins are matched: on the linear engine when it can run it, its groups
 * made non-capturing (only `test` is used, and that engine's time grows with the captures it keeps:
 * 130 groups took 0.5 s per match on Node 20).
 */
export function originRegExp (source: string, flags: string): RegExp {
  return LINEAR && linear(source, flags) ? RegExp(withoutCaptures(source), `${flags}l`) : RegExp(source, flags)
}

/**
 * `source` with `(` and `(?<name>` as `(?:`. For a pattern the linear engine runs: it has no
 * backreference, so `\\2` (octal, or 2) and `\\k` (k) read the same without the groups.
 */
function withoutCaptures (source: string): string {
  let out = ''
  let inClass = false
  for (let at = 0; at < source.length; at++) {
    const c = source[at] as string
    if (c === '\\') {
      out += source.slice(at, at + 2)
      at++
    } else if (inClass || c !== '(') {
      if (c === '[') inClass = true
      else if (c === ']') inClass = false
      out += c
    } else {
      // GROUP reads `(`, `(?:`, a lookaround or `(?<name>`; `(?` with anything else (`(?i:`) is left as it is.
      const group = GROUP.exec(source.slice(at)) as RegExpExecArray
      const capturing = group[0] === '(' ? source[at + 1] !== '?' : group[1] === undefined && group[0].startsWith('(?<')
      out += capturing ? '(?:' : c
      if (capturing) at += group[0].length - 1
    }
  }
  return out
}

/** Ranges V8 makes of a class escape, below U+10000: branches in a class. */
const ESCAPE_RANGES: Record<string, number> = { '\\d': 1, '\\D': 2, '\\w': 4, '\\W': 5, '\\s': 10, '\\S': 11 }

/**
 * About the size of the program V8's linear-time engine compiles `source` (no u flag) to, as
 * V8 11 to 13 compile it, captures left out: a character or an assertion is one instruction; a
 * class (`.` too) of k ranges is k branches, 3k - 2 (ranges as written, an upper bound: `[ab]` two);
 * `a|b` adds 2; `x{n,m}` is n copies of x and m - n optional ones, each one more, `x{n,}` n copies
 * and a loop of x and 2. At each character of the Origin the engine may step through all of it.
 */
export function linearSize (source: string, flags: string): number {
  let at = 0
  const branches = (ranges: number) => 3 * Math.max(1, ranges) - 2
  const item = (): string => {
    if (source[at] !== '\\') return source[at] as string
    return (LEGACY_ESCAPE.exec(source.slice(at)) as RegExpExecArray)[0]
  }
  const atom = (): number => {
    const c = source[at] as string
    if (c === '(') {
      at += (GROUP.exec(source.slice(at)) as RegExpExecArray)[0].length
      const size = alternation()
      at++
      return size
    }
    if (c === '[') {
      const negated = source[++at] === '^'
      if (negated) at++
      let ranges = negated ? 1 : 0
      while (at < source.length && source[at] !== ']') {
        const first = item()
        at += first.length
        ranges += ESCAPE_RANGES[first] ?? 1
        if (ESCAPE_RANGES[first] !== undefined || source[at] !== '-' || source[at + 1] === ']' || at + 1 >= source.length) continue
        // `a-z`: one range, unless a class escape ends it (`[a-\\d]`: a, - and \\d).
        at++
        if (ESCAPE_RANGES[item()] === undefined) at += item().length
        else ranges++
      }
      at++
      return branches(ranges)
    }
    const text = item()
    at += text.length
    if (text === '.') return branches(flags.includes('s') ? 1 : 4)
    return branches(ESCAPE_RANGES[text] ?? 1)
  }
  const term = (): number => {
    const body = atom()
    const quantifier = QUANTIFIER.exec(source.slice(at))
    if (quantifier === null) return body
    at += quantifier[0].length
    const { least, most } = counts(quantifier)
    return least * body + (most === Infinity ? body + 2 : (most - least) * (body + 1))
  }
  const sequence = (): number => {
    let size = 0
    while (at < source.length && source[at] !== '|' && source[at] !== ')') size += term()
    return size
  }
  const alternation = (): number => {
    let size = sequence()
    while (source[at] === '|') {
      at++
      size += sequence() + 2
    }
    return size
  }
  return alternation()
}

/**
 * Why `source` (a valid pattern with `flags`) could stall the gateway, if it could. One the linear
 * engine can run (originRegExp) gets the checks every pattern gets (emptyWaysProblem) and a bound
 * on its program (MAX_PROGRAM); any other the full check for backtracking (backtrackingProblem).
 */
export function slowMatchingProblem (source: string, flags: string): string | undefined {
  // The check and V8's compiler take time with the pattern's length (25,000 characters: seconds, on the serving thread at a reload).
  if (source.length > MAX_PATTERN) return `is ${source.length} characters long, more than ${MAX_PATTERN}: split it into several entries`
  const key = `${flags}/${source}`
  if (checked.has(key)) return checked.get(key)
  const problem = LINEAR && linear(source, flags) ? emptyWaysProblem(source, flags) ?? sizeProblem(source, flags) : backtrackingProblem(source, flags)
  if (checked.size >= MAX_CHECKED) checked.delete(checked.keys().next().value as string)
  checked.set(key, problem)
  return problem
}

function sizeProblem (source: string, flags: string): string | undefined {
  const size = linearSize(source, flags)
  if (size <= MAX_PROGRAM) return undefined
  return `V8's linear-time engine would run it as a program of about ${size} steps, more than ${MAX_PROGRAM}, each of which an Origin ` +
    'can keep busy at each of its characters (tens of milliseconds of the serving thread per request beyond that): a counted repetition ' +
    'copies what it repeats (`[a-z]{0,16}` 16 times, a repeated group the repetitions inside it too), a class about three per range ' +
    '(`\\s` 28, `.` 10): count less, or list the origins'
}
