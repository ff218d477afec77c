import { counts, ESCAPE, GROUP, LEGACY_ESCAPE, MAX_PATTERN_ORIGIN, QUANTIFIER } from './backtracking.ts'

/**
 * A text a pattern reads, with, per character, whether the pattern leaves it open (`1`, else `0`):
 * its class reads more than one of a host name's characters (a-z, 0-9, `-`, `.`).
 */
export interface Sample { text: string, open: string }
/** A part's texts: its shortest (the shortest alternative, the least count), and ones taking its other alternatives and optional parts. */
interface Shown { least: Sample, more: Sample[] }

/** A host name's characters, in the order a sample shows them: the first a class reads, else any it reads. */
const HOST_CODES = [...'abcdefghijklmnopqrstuvwxyz0123456789-.'].map(c => c.charCodeAt(0))
const CODES = [...HOST_CODES, ...Array.from({ length: 256 }, (_, code) => code)]
const NONE: Sample = { text: '', open: '' }
/** Texts are cut one past the longest Origin tried against a pattern: such a text is dropped, and its copies stay cheap. */
const LONGEST = MAX_PATTERN_ORIGIN + 1

function join (...parts: Sample[]): Sample {
  let text = ''
  let open = ''
  for (const part of parts) {
    text += part.text
    open += part.open
  }
  return { text: text.slice(0, LONGEST), open: open.slice(0, LONGEST) }
}

function repeat (sample: Sample, times: number): Sample {
  const enough = sample.text === '' ? 0 : Math.min(times, LONGEST)
  return { text: sample.text.repeat(enough).slice(0, LONGEST), open: sample.open.repeat(enough).slice(0, LONGEST) }
}

/**
 * Texts `source` (a valid pattern with `flags`) reads, for probes to change: its shortest, then
 * ones each taking another alternative, or an optional part or repetition once, at most `most` and
 * MAX_PATTERN_ORIGIN characters each. Counts are kept (`[a-z]{2}` reads two characters). Lookarounds,
 * anchors and backreferences read nothing here: test each text against the pattern.
 */
export function samples (source: string, flags: string, most: number): Sample[] {
  let at = 0
  const classes = new Map<string, Sample>()
  const char = (atom: string): Sample => {
    let sample = classes.get(atom)
    if (sample !== undefined) return sample
    let re: RegExp
    try {
      re = RegExp(`^(?:${atom})$`, flags.replace('m', ''))
    } catch {
      // A backreference with the u flag, alone: reads what its group read.
      return NONE
    }
    const reads = (code: number) => re.test(String.fromCharCode(code))
    // A class that reads nothing (`[]`) shows NUL: the pattern then does not match the text.
    sample = { text: String.fromCharCode(CODES.find(reads) ?? 0), open: HOST_CODES.filter(reads).length > 1 ? '1' : '0' }
    classes.set(atom, sample)
    return sample
  }
  const alternation = (): Shown => {
    const alternatives = [sequence()]
    while (source[at] === '|') {
      at++
      alternatives.push(sequence())
    }
    const shortest = alternatives.reduce((a, b) => b.least.text.length < a.least.text.length ? b : a)
    const more = alternatives.flatMap(a => a === shortest ? a.more : [a.least, ...a.more])
    return { least: shortest.least, more: more.slice(0, most) }
  }
  const sequence = (): Shown => {
    const parts: Shown[] = []
    while (at < source.length && source[at] !== '|' && source[at] !== ')') parts.push(term())
    const least = join(...parts.map(p => p.least))
    const more: Sample[] = []
    // Each part's other texts between the others' shortest: before, the parts' before it.
    let before = NONE
    for (let i = 0; i < parts.length && more.length < most; i++) {
      const part = parts[i] as Shown
      if (part.more.length > 0) {
        const after = join(...parts.slice(i + 1).map(p => p.least))
        for (const sample of part.more.slice(0, most - more.length)) more.push(join(before, sample, after))
      }
      before = join(before, part.least)
    }
    return { least, more }
  }
  const term = (): Shown => {
    const body = atom()
    const quantifier = QUANTIFIER.exec(source.slice(at))
    if (quantifier === null) return body
    at += quantifier[0].length
    const { least, most: times } = counts(quantifier)
    if (times === 0) return { least: NONE, more: [] }
    const rest = repeat(body.least, Math.max(0, least - 1))
    const more = body.more.map(sample => join(sample, rest))
    return { least: repeat(body.least, least), more: least === 0 ? [body.least, ...more].slice(0, most) : more }
  }
  const atom = (): Shown => {
    const rest = source.slice(at)
    const c = rest[0] as string
    if (c === '(') {
      const group = GROUP.exec(rest) as RegExpExecArray
      at += group[0].length
      const body = alternation()
      at++
      // A lookaround reads nothing.
      return group[1] === undefined ? body : { least: NONE, more: [] }
    }
    let text = c
    if (c === '[') {
      let end = 1
      if (rest[end] === '^') end++
      while (end < rest.length && rest[end] !== ']') end += rest[end] === '\\' ? 2 : 1
      text = rest.slice(0, end + 1)
    } else if (c === '\\') {
      text = ((flags.includes('u') ? ESCAPE : LEGACY_ESCAPE).exec(rest) as RegExpExecArray)[0]
    }
    at += text.length
    return { least: c === '^' || c === '$' || /^\\[bB]$/.test(text) ? NONE : char(text), more: [] }
  }
  const all = alternation()
  const texts = new Map<string, Sample>()
  for (const sample of [all.least, ...all.more]) if (sample.text.length <= MAX_PATTERN_ORIGIN && !texts.has(sample.text)) texts.set(sample.text, sample)
  return [...texts.values()].slice(0, most)
}
