/**
 * Whether a regular expression can make V8's backtracking matcher take exponential time, or
 * polynomial time of degree 3 or more, on some input: the pattern as an automaton whose states are
 * its character positions (Glushkov), with each transition counted once per way the pattern's
 * structure offers it, since the matcher tries each way. Exponential: two different paths from a
 * state back to it over the same text (Weideman et al., "Analyzing matching time behavior of
 * backtracking regular expression matchers by using ambiguity of NFA", 2016: a component of the
 * pair product holding a state pair and a pair of different states, or two parallel transitions).
 * Polynomial: loops in a row that can all read the same text (the triple product), each such pair
 * one degree more. Finite ambiguity outside loops multiplies too: the ways one text is read from the
 * start are counted (manyWays). Inputs are Origin headers: characters 0-255 (latin1), so character classes are
 * compared over those exactly.
 */

/** A quantifier: its least count (1), and the comma (2) and most count (3) of braces. */
export const QUANTIFIER = /^(?:[*+?]|\{(\d+)(,(\d*))?\})\??/
export const ESCAPE = /^\\(?:[pPu]\{[^}]*\}|k<[^>]*>|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|c[A-Za-z]|\d+|[^])/
/** A quantifier's (QUANTIFIER's match) least and most counts. */
export function counts (quantifier: RegExpExecArray): { least: number, most: number } {
  const least = quantifier[0][0] === '+' ? 1 : Number(quantifier[1] ?? 0)
  const most = quantifier[1] === undefined ? (quantifier[0][0] === '?' ? 1 : Infinity) : quantifier[2] === undefined ? least : quantifier[3] === '' ? Infinity : Number(quantifier[3])
  return { least, most }
}
/**
 * An escape without the `u` flag as V8 reads it (ECMA-262 Annex B): `\p`, `\u`, `\x` and `\k` not
 * followed by what completes them are the letter alone (`\p{1,3}` is p, one to three times), a number
 * above the group count is octal, or a literal 8 or 9 (`\8`), and `\c` before no letter is a backslash.
 */
export const LEGACY_ESCAPE = /^\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|c[A-Za-z]|[0-3][0-7]{0,2}|[4-7][0-7]?|[^c]|(?=c))/
/** A group's opening: a lookaround's kind (1). */
export const GROUP = /^\((?:\?(?::|(=|!|<=|<!)|<[^>]*>))?/
/**
 * The longest Origin tried against a pattern: a scheme, a host (at most 253 characters) and a port.
 * Longer ones, which no browser sends, match exact entries only: a pattern's cost grows with the text.
 */
export const MAX_PATTERN_ORIGIN = 300
/**
 * Ways at most one text may be read from the pattern's start: the matcher tries each on an Origin
 * that starts so and then fails, at each of its up to 300 characters (a few milliseconds at most).
 */
const MAX_WAYS = 1024
/** Positions at most (backreferences read as copies of their groups): beyond, too complex to check. */
const MAX_POSITIONS = 5000
/** Product transitions looked at, at most, all checks of a pattern together: beyond, it is refused as too complex. */
const BUDGET = 200_000
/** Loops in a row that may read the same text: 2 is quadratic, which an Origin's bounded length keeps cheap. */
const MAX_LOOPS_IN_A_ROW = 2
const HINT = 'make each repetition stop where the next can start, e.g. `[a-z0-9]+(?:-[a-z0-9]+)*` for a label with hyphens, `([a-z0-9-]+\\.)*` for any subdomains'

/** Ways (0, 1, or 2 for "more than one") to reach each position. */
type Counts = Map<number, number>
/** nullable: the ways it can match nothing (capWays). */
interface Fragment { nullable: number, first: Counts, last: Counts }
/** A quantifier that repeats (its most above 1): its source and the positions of its body, [lo, hi). */
interface Loop { text: string, lo: number, hi: number }

const cap = (n: number): number => Math.min(2, n)
/** Ways to match nothing, counted up to just past MAX_WAYS. */
const capWays = (n: number): number => Math.min(MAX_WAYS + 1, n)
function add (into: Counts, from: Counts, times = 1): void {
  if (times === 0) return
  for (const [k, n] of from) into.set(k, cap((into.get(k) ?? 0) + n * times))
}
const merged = (a: Counts, b: Counts, times = 1): Counts => { const out = new Map(a); add(out, b, times); return out }
const EMPTY: Fragment = { nullable: 1, first: new Map(), last: new Map() }

class Automaton {
  /** Per position: the characters 0-255 it reads, as bits. */
  readonly chars: Uint32Array[] = []
  readonly follow: Counts[] = []
  readonly loops: Loop[] = []
  /** A repetition whose body can match nothing and must repeat more than once (`(?:[0-9]?){40}`). */
  emptyIterations: string | undefined
  /** Parts in a row that together match nothing in more than MAX_WAYS ways (`(?:|)(?:|)...`). */
  emptyWays: { from: number, text: string } | undefined
  /** A lookbehind: V8 reads it backwards, this automaton forwards. */
  lookbehind: string | undefined
  /** Alternatives of which two or more can match nothing (`(?:|)`, `(?:a?|\\b)`): V8's compiler is exponential in runs of them. */
  emptyAlternatives: string | undefined
  private readonly cache = new Map<string, Uint32Array>()
  /** Ways to reach each position from the pattern's start. */
  readonly start: Counts
  private at = 0
  private readonly source: string
  private readonly flags: string
  /** Capturing groups in the whole pattern, and whether any is named: what makes `\2` and `\k<a>` backreferences without the `u` flag. */
  private readonly groups: number
  private readonly named: boolean
  /** Each capturing group's body in the source, [from, to), by number and by name, once closed. */
  private readonly bodies = new Map<string, [number, number]>()
  private opened = 0
  /** Above 0 while a group's body is read again for a backreference: its groups are not new ones. */
  private copying = 0

  constructor (source: string, flags: string) {
    this.source = source
    this.flags = flags
    const openings = [...source.matchAll(/\\[^]|\[(?:\\[^]|[^\]])*\]|\((?!\?)|\(\?<(?![=!])/g)].map(m => m[0]).filter(m => m.startsWith('('))
    this.groups = openings.length
    this.named = openings.some(m => m.length > 1)
    this.start = this.alternation().first
  }

  /** The escape `rest` starts with: its length, and the atom it reads as alone or the group it refers back to (neither: \b, \B). */
  private escape (rest: string): { length: number, atom?: string, reference?: string } {
    const legacy = !this.flags.includes('u')
    const reference = /^\\(?:([1-9]\d*)|k<([^>]*)>)/.exec(rest)
    if (reference !== null && (!legacy || (reference[1] !== undefined ? Number(reference[1]) <= this.groups : this.named))) {
      return { length: reference[0].length, reference: reference[1] ?? reference[2] as string }
    }
    const escape = ((legacy ? LEGACY_ESCAPE : ESCAPE).exec(rest) as RegExpExecArray)[0]
    if (/^\\[bB]$/.test(escape)) return { length: 2 }
    return escape === '\\' ? { length: 1, atom: '\\\\' } : { length: escape.length, atom: escape }
  }

  /** A backreference reads again what its group read: a copy of the group's body (a group not closed yet: nothing). */
  private copy (reference: string): Fragment {
    const body = this.bodies.get(reference)
    if (body === undefined) return EMPTY
    const at = this.at
    this.at = body[0]
    this.copying++
    const f = this.alternation()
    this.copying--
    this.at = at
    return f
  }

  private alternation (): Fragment {
    const from = this.at
    let f = this.sequence()
    let empty = f.nullable > 0 ? 1 : 0
    while (this.source[this.at] === '|') {
      this.at++
      const g = this.sequence()
      if (g.nullable > 0 && ++empty === 2) this.emptyAlternatives ??= this.source.slice(from, this.at)
      f = { nullable: capWays(f.nullable + g.nullable), first: merged(f.first, g.first), last: merged(f.last, g.last) }
    }
    return f
  }

  private sequence (): Fragment {
    let f = EMPTY
    // The ways to match nothing of the parts in a row since the last that must read a character.
    let run = { from: this.at, ways: 1 }
    while (this.at < this.source.length && this.source[this.at] !== '|' && this.source[this.at] !== ')') {
      const at = this.at
      const g = this.term()
      run = g.nullable === 0 ? { from: this.at, ways: 1 } : { from: run.ways === 1 ? at : run.from, ways: capWays(run.ways * g.nullable) }
      // The whole run shown, the first that is too many.
      if (run.ways > MAX_WAYS && (this.emptyWays === undefined || this.emptyWays.from === run.from)) this.emptyWays = { from: run.from, text: this.source.slice(run.from, this.at) }
      for (const [x, n] of f.last) for (const [y, m] of g.first) this.edge(x, y, n * m)
      f = { nullable: capWays(f.nullable * g.nullable), first: merged(f.first, g.first, f.nullable), last: merged(g.last, f.last, g.nullable) }
    }
    return f
  }

  private term (): Fragment {
    const start = this.at
    const lo = this.chars.length
    const rest = this.source.slice(this.at)
    const c = rest[0] as string
    let f: Fragment
    if (c === '^' || c === '$') {
      this.at++
      f = EMPTY
    } else if (c === '(') {
      const group = GROUP.exec(rest) as RegExpExecArray
      if (group[1]?.startsWith('<') === true) this.lookbehind ??= group[0]
      this.at += group[0].length
      const number = group[1] === undefined && group[0] !== '(?:' && this.copying === 0 ? String(++this.opened) : undefined
      const from = this.at
      const body = this.alternation()
      if (number !== undefined) {
        this.bodies.set(number, [from, this.at])
        if (group[0].length > 1) this.bodies.set(group[0].slice(3, -1), [from, this.at])
      }
      this.at++
      // A lookaround is tried from where it stands, its result kept: a branch that leads nowhere.
      f = group[1] === undefined ? body : { nullable: 1, first: body.first, last: new Map() }
    } else if (c === '\\') {
      const { length, atom, reference } = this.escape(rest)
      this.at += length
      f = atom !== undefined ? this.position(atom) : reference !== undefined ? this.copy(reference) : EMPTY
    } else if (c === '[') {
      let end = 1
      if (rest[end] === '^') end++
      while (end < rest.length && rest[end] !== ']') end += rest[end] === '\\' ? 2 : 1
      this.at += end + 1
      f = this.position(rest.slice(0, end + 1))
    } else {
      this.at++
      f = this.position(c)
    }
    const quantifier = QUANTIFIER.exec(this.source.slice(this.at))
    if (quantifier === null) return f
    this.at += quantifier[0].length
    const { least, most } = counts(quantifier)
    if (most === 0) return EMPTY
    // An iteration that matches nothing once the least count is met fails (ECMA-262 RepeatMatcher).
    const nullable = least === 0 ? 1 : capWays(f.nullable ** least)
    // Until the least count is met an iteration may match nothing (ECMA-262 RepeatMatcher): n
    // iterations share k characters C(n, k) ways, each tried.
    if (least > 1 && f.nullable > 0 && f.first.size > 0) this.emptyIterations ??= this.source.slice(start, this.at)
    if (most > 1) {
      // Counted as a loop: {2,9} tries as many splits as +.
      for (const [x, n] of f.last) for (const [y, m] of f.first) this.edge(x, y, n * m)
      this.loops.push({ text: this.source.slice(start, this.at), lo, hi: this.chars.length })
    }
    return { nullable, first: f.first, last: f.last }
  }

  private edge (from: number, to: number, n: number): void {
    const follow = this.follow[from] as Counts
    follow.set(to, cap((follow.get(to) ?? 0) + n))
  }

  private position (atom: string): Fragment {
    let bits = this.cache.get(atom)
    if (bits === undefined) {
      const re = new RegExp(`^(?:${atom})$`, this.flags.replace('m', ''))
      bits = new Uint32Array(8)
      for (let code = 0; code < 256; code++) if (re.test(String.fromCharCode(code))) bits[code >>> 5] = (bits[code >>> 5] as number) | (1 << (code & 31))
      this.cache.set(atom, bits)
    }
    const id = this.chars.length
    if (id === MAX_POSITIONS) throw new OverBudget()
    this.chars.push(bits)
    this.follow.push(new Map())
    return { nullable: 0, first: new Map([[id, 1]]), last: new Map([[id, 1]]) }
  }

  /** Whether positions can all read one same character. */
  shared (...ids: number[]): boolean {
    for (let w = 0; w < 8; w++) {
      let bits = ~0
      for (const id of ids) bits &= (this.chars[id] as Uint32Array)[w] as number
      if (bits !== 0) return true
    }
    return false
  }

  /** The repetition to blame for the loop over `ids`: the outermost made of them only, else the innermost holding them. */
  loopOf (ids: readonly number[]): string {
    const within = new Set(ids)
    const size = (loop: Loop) => loop.hi - loop.lo
    let best: Loop | undefined
    for (const loop of this.loops) {
      let all = true
      for (let id = loop.lo; id < loop.hi && all; id++) all = within.has(id)
      // On a tie, the later: an outer loop is recorded after those inside it.
      if (all && (best === undefined || size(loop) >= size(best))) best = loop
    }
    if (best !== undefined) return best.text
    for (const loop of this.loops) if (ids.every(id => loop.lo <= id && id < loop.hi) && (best === undefined || size(loop) < size(best))) best = loop
    return best?.text ?? this.source
  }
}

/** Strongly connected components (iterative Tarjan): a component number per node, in reverse topological order. */
function components (count: number, next: (node: number) => Iterable<number>): Int32Array {
  const index = new Int32Array(count).fill(-1)
  const low = new Int32Array(count)
  const component = new Int32Array(count).fill(-1)
  const stack: number[] = []
  let counter = 0
  let found = 0
  for (let root = 0; root < count; root++) {
    if (index[root] !== -1) continue
    const work: Array<[number, Iterator<number>]> = [[root, next(root)[Symbol.iterator]()]]
    index[root] = low[root] = counter++
    stack.push(root)
    while (work.length > 0) {
      const [node, it] = work.at(-1) as [number, Iterator<number>]
      const step = it.next()
      if (!step.done) {
        const to = step.value
        if (index[to] === -1) {
          index[to] = low[to] = counter++
          stack.push(to)
          work.push([to, next(to)[Symbol.iterator]()])
        } else if (component[to] === -1) low[node] = Math.min(low[node] as number, index[to] as number)
        continue
      }
      work.pop()
      const parent = work.at(-1)
      if (parent !== undefined) low[parent[0]] = Math.min(low[parent[0]] as number, low[node] as number)
      if (low[node] === index[node]) {
        let member: number
        do { member = stack.pop() as number; component[member] = found } while (member !== node)
        found++
      }
    }
  }
  return component
}

class OverBudget extends Error {}

/**
 * Why `source` (a valid pattern with `flags`) would backtrack for long on some input, if it would:
 * the repetitions to blame and what to write instead.
 */
export function backtrackingProblem (source: string, flags: string): string | undefined {
  return checked(source, flags, problem)
}

/**
 * The checks every pattern gets, those V8's linear-time engine runs too (linear.ts): no lookbehind
 * (the full check cannot follow one, and Node 20 cannot run one in linear time), at most one
 * alternative of an alternation that can match nothing (V8's backtracking compiler is exponential in
 * runs of them, split by a character or two: 20 s), not many ways in a row to match nothing.
 */
export function emptyWaysProblem (source: string, flags: string): string | undefined {
  return checked(source, flags, cheapProblem)
}

function checked (source: string, flags: string, check: (nfa: Automaton) => string | undefined): string | undefined {
  try {
    return check(new Automaton(source, flags))
  } catch (err) {
    if (!(err instanceof OverBudget)) throw err
    return 'too complex to check for slow matching (ReDoS): split it into several simpler entries'
  }
}

function cheapProblem (nfa: Automaton): string | undefined {
  if (nfa.lookbehind !== undefined) {
    return `it uses a lookbehind (\`${nfa.lookbehind}\`), which V8 reads backwards and the check for slow matching (ReDoS) cannot follow: ` +
      'write it without one, or list the exact origins'
  }
  const ways = emptyWays(nfa)
  if (ways !== undefined || nfa.emptyAlternatives === undefined) return ways
  return `\`${nfa.emptyAlternatives}\` has more than one alternative that can match nothing: V8's regexp compiler takes time exponential in ` +
    'runs of such groups (seconds, a ReDoS at the first request); let at most one alternative match nothing, e.g. `(?:a|b)?`'
}

function emptyWays (nfa: Automaton): string | undefined {
  if (nfa.emptyWays === undefined) return undefined
  return `\`${nfa.emptyWays.text}\` can match nothing in more than ${MAX_WAYS} ways (groups in a row with alternatives that each can match nothing, ` +
    '`(?:|)`, `(?:\\b|)`, `(?:a?|b?)`): on an Origin that fails after them each way is tried (seconds with 24 of them, a ReDoS); ' +
    'let at most one alternative match nothing, e.g. `(?:a|b)?`'
}

function problem (nfa: Automaton): string | undefined {
  const cheap = cheapProblem(nfa)
  if (cheap !== undefined) return cheap
  const n = nfa.chars.length
  const follows = nfa.follow.map(f => [...f.keys()])
  const scc = components(n, x => follows[x] as number[])
  const members = new Map<number, number[]>()
  scc.forEach((c, x) => { const list = members.get(c); if (list === undefined) members.set(c, [x]); else list.push(x) })
  const cyclic = (c: number) => {
    const [x, ...more] = members.get(c) as number[]
    return more.length > 0 || (follows[x as number] as number[]).includes(x as number)
  }
  let budget = BUDGET
  const spend = () => { if (--budget < 0) throw new OverBudget() }
  if (nfa.emptyIterations !== undefined) {
    return `\`${nfa.emptyIterations}\` repeats, a least number of times, a group that can match nothing: until that count is met each ` +
      'iteration may match nothing, so the characters can be shared among the iterations in very many ways, each tried on an Origin that nearly ' +
      'matches (seconds at 28 characters, a ReDoS); make the group match at least one character and count the characters instead, e.g. `[0-9]{0,40}`'
  }
  for (const [c, ids] of members) {
    if (cyclic(c) && ambiguousLoop(nfa, follows, scc, c, ids, spend)) {
      return `\`${nfa.loopOf(ids)}\` can match the same text in more than one way (a repetition inside a repeated group, or alternatives that match alike): ` +
        `on an Origin that nearly matches, the time doubles with each character (seconds at 30, a ReDoS that stalls the gateway); ${HINT}`
    }
  }
  const chain = longestChain(nfa, follows, scc, members, cyclic, spend)
  if (chain.pairs + 1 > MAX_LOOPS_IN_A_ROW) {
    const texts = chain.loops.map(ids => `\`${nfa.loopOf(ids)}\``)
    return `${texts.slice(0, -1).join(', ')} and ${texts.at(-1) as string} can each take the same characters, one after another: ` +
      `on a long Origin that nearly matches, every split is tried (time growing as its length to the power ${chain.pairs + 1}, a ReDoS); ` +
      `let at most two repetitions in a row take the same characters; ${HINT}`
  }
  // Ambiguity outside repetitions multiplies too: parts in a row, each able to read the same characters two ways.
  const many = manyWays(nfa, spend)
  if (many !== undefined) {
    return `it can read \`${many.text}\` in ${many.ways} ways (alternatives or optional parts in a row that can take the same characters, ` +
      '`(?:[a-z]|\\w)(?:[a-z]|\\w)...`, `[a-z0-9-]?[a-z0-9-]?...`): on an Origin that starts so and then fails to match each way is tried, and each such ' +
      'part doubles the time (seconds with 28 of them, a ReDoS); make alternatives exclusive (`[a-z]|[0-9]`, not `[a-z]|\\w`) and count optional characters ' +
      'with one repetition, e.g. `[a-z0-9-]{0,28}`'
  }
  return undefined
}

/**
 * A text the pattern can read, from its start, in more than MAX_WAYS ways (with their number), if
 * there is one of at most MAX_PATTERN_ORIGIN characters: breadth first over the ways to each position
 * after each text (a subset construction, counted), characters no position tells apart taken as one.
 */
function manyWays (nfa: Automaton, spend: () => void): { text: string, ways: number } | undefined {
  const reads = (bits: Uint32Array, code: number) => ((bits[code >>> 5] as number) & (1 << (code & 31))) !== 0
  // Positions of one atom share its character set.
  const sets = [...new Set(nfa.chars)]
  const classOf = new Int32Array(256)
  for (const bits of sets) {
    const split = new Map<number, number>()
    for (let code = 0; code < 256; code++) {
      const key = (classOf[code] as number) * 2 + (reads(bits, code) ? 1 : 0)
      let c = split.get(key)
      if (c === undefined) split.set(key, c = split.size)
      classOf[code] = c
    }
  }
  // A class's character: printable if it has one, to show.
  const shown: number[] = []
  for (let code = 255; code >= 0; code--) {
    const c = classOf[code] as number
    if (shown[c] === undefined || (code > 0x20 && code < 0x7f)) shown[c] = code
  }
  const classesOf = new Map(sets.map(bits => [bits, shown.flatMap((code, c) => reads(bits, code) ? [c] : [])]))
  const classes = nfa.chars.map(bits => classesOf.get(bits) as number[])
  // Texts read, as their last character and the text before (an index here).
  const texts: Array<{ before: number, char: string }> = []
  const text = (at: number): string => at < 0 ? '' : text((texts[at] as { before: number }).before) + (texts[at] as { char: string }).char
  const seen = new Set<string>()
  let layer: Array<{ at: number, ways: Counts }> = [{ at: -1, ways: new Map([[-1, 1]]) }]
  for (let length = 0; length < MAX_PATTERN_ORIGIN && layer.length > 0; length++) {
    const next: typeof layer = []
    for (const { at, ways } of layer) {
      const after = new Map<number, Map<number, number>>()
      for (const [x, w] of ways) {
        for (const [y, m] of x < 0 ? nfa.start : nfa.follow[x] as Counts) {
          for (const c of classes[y] as number[]) {
            spend()
            let to = after.get(c)
            if (to === undefined) after.set(c, to = new Map())
            to.set(y, (to.get(y) ?? 0) + w * m)
          }
        }
      }
      for (const [c, to] of after) {
        let total = 0
        for (const w of to.values()) total += w
        const key = [...to].sort((a, b) => a[0] - b[0]).join(';')
        if (total <= MAX_WAYS && seen.has(key)) continue
        seen.add(key)
        texts.push({ before: at, char: String.fromCharCode(shown[c] as number) })
        if (total > MAX_WAYS) return { text: JSON.stringify(text(texts.length - 1)).slice(1, -1), ways: total }
        next.push({ at: texts.length - 1, ways: to })
      }
    }
    layer = next
  }
  return undefined
}

/** Whether, within component `c`, some state returns to itself two ways over the same text (pair product). */
function ambiguousLoop (nfa: Automaton, follows: number[][], scc: Int32Array, c: number, ids: readonly number[], spend: () => void): boolean {
  const key = (x: number, y: number) => x * follows.length + y
  const nodes = new Map<number, number>()
  const pairs: Array<[number, number]> = []
  const edges: number[][] = []
  const split: boolean[] = []
  const visit = (x: number, y: number): number => {
    const k = key(x, y)
    let node = nodes.get(k)
    if (node === undefined) {
      node = pairs.length
      nodes.set(k, node)
      pairs.push([x, y])
      edges.push([])
      split.push(false)
    }
    return node
  }
  for (const p of ids) visit(p, p)
  for (let node = 0; node < pairs.length; node++) {
    const [x, y] = pairs[node] as [number, number]
    for (const x2 of follows[x] as number[]) {
      if (scc[x2] !== c) continue
      for (const y2 of follows[y] as number[]) {
        // Each pair looked at, not only each new one: the budget bounds the check's time.
        spend()
        if (scc[y2] !== c || !nfa.shared(x2, y2)) continue
        const to = visit(x2, y2)
        edges[node]?.push(to)
        // The same move taken two ways: two parallel transitions.
        if (x === y && x2 === y2 && (nfa.follow[x]?.get(x2) ?? 0) > 1) split[node] = true
      }
    }
  }
  const component = components(pairs.length, node => edges[node] as number[])
  const diagonal = new Set<number>()
  pairs.forEach(([x, y], node) => { if (x === y) diagonal.add(component[node] as number) })
  return pairs.some(([x, y], node) => diagonal.has(component[node] as number) &&
    (x !== y || (split[node] === true && (edges[node] as number[]).some(to => component[to] === component[node]))))
}

/**
 * The longest run of loops in a row that read the same text, as the positions of each: loops p then
 * q such that, over one text, p returns to p, goes on to q, and q returns to q (from (p, p, q) to
 * (p, q, q) in the triple product); each such pair on a path multiplies the splits tried by the
 * input's length, whatever lies between them.
 */
function longestChain (nfa: Automaton, follows: number[][], scc: Int32Array, members: ReadonlyMap<number, number[]>,
  cyclic: (c: number) => boolean, spend: () => void): { pairs: number, loops: number[][] } {
  // Tarjan numbers components in reverse topological order: successors come first.
  const count = members.size
  const next: Array<Set<number>> = []
  const reach: Array<Set<number>> = []
  for (let c = 0; c < count; c++) {
    const out = new Set<number>()
    for (const x of members.get(c) as number[]) for (const y of follows[x] as number[]) if (scc[y] !== c) out.add(scc[y] as number)
    next[c] = out
    reach[c] = new Set([c, ...[...out].flatMap(s => [...reach[s] as Set<number>])])
  }
  const best: Array<{ pairs: number, loops: number[] }> = []
  for (let c = 0; c < count; c++) {
    let chain = { pairs: 0, loops: [] as number[] }
    for (const s of next[c] as Set<number>) if ((best[s]?.pairs ?? 0) > chain.pairs) chain = best[s] as typeof chain
    if (cyclic(c)) {
      for (let b = 0; b < c; b++) {
        const rest = best[b] as typeof chain
        if (!cyclic(b) || rest.pairs + 1 <= chain.pairs || !(reach[c] as Set<number>).has(b) || !overlapping(nfa, follows, scc, reach, members, c, b, spend)) continue
        chain = { pairs: rest.pairs + 1, loops: [c, ...rest.loops[0] === b ? rest.loops : [b, ...rest.loops]] }
      }
    }
    best[c] = chain
  }
  const longest = best.reduce((a, b) => b.pairs > a.pairs ? b : a, { pairs: 0, loops: [] })
  return { pairs: longest.pairs, loops: longest.loops.map(c => members.get(c) as number[]) }
}

/** Whether loop components a and b (b after a) can read the same text in a row: triple product search. */
function overlapping (nfa: Automaton, follows: number[][], scc: Int32Array, reach: ReadonlyArray<Set<number>>,
  members: ReadonlyMap<number, number[]>, a: number, b: number, spend: () => void): boolean {
  const between = (y: number) => (reach[a] as Set<number>).has(scc[y] as number) && (reach[scc[y] as number] as Set<number>).has(b)
  const n = follows.length
  for (const p of members.get(a) as number[]) {
    for (const q of members.get(b) as number[]) {
      // The text ends reading one character into p, q and q.
      if (!nfa.shared(p, q)) continue
      const seen = new Set<number>()
      const queue: Array<[number, number, number]> = [[p, p, q]]
      for (let i = 0; i < queue.length; i++) {
        const [x, y, z] = queue[i] as [number, number, number]
        for (const x2 of follows[x] as number[]) {
          if (scc[x2] !== a) continue
          for (const y2 of follows[y] as number[]) {
            spend()
            if (!between(y2) || !nfa.shared(x2, y2)) continue
            for (const z2 of follows[z] as number[]) {
              // Each triple looked at, not only each new one: the budget bounds the check's time.
              spend()
              if (scc[z2] !== b || !nfa.shared(x2, y2, z2)) continue
              if (x2 === p && y2 === q && z2 === q) return true
              const k = (x2 * n + y2) * n + z2
              if (seen.has(k)) continue
              seen.add(k)
              queue.push([x2, y2, z2])
            }
          }
        }
      }
    }
  }
  return false
}
