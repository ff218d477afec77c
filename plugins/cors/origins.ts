import { ESCAPE, GROUP, MAX_PATTERN_ORIGIN, QUANTIFIER } from './backtracking.ts'
import { samples } from './samples.ts'
import { linearSize, originRegExp, slowMatchingProblem } from './linear.ts'

const REGEX = /^\/(.+)\/([imsu]*)$/
const LABELS = '[a-z0-9-]+(?:\\.[a-z0-9-]+)*'
/** A wildcard as documented: an optional scheme, `*` for the host's first labels (or the whole host), the rest fixed. */
const WILDCARD = /^(?:([a-z][a-z0-9+.-]*):\/\/)?\*((?:\.[^*]*)?)$/
/** Origins no config means to let in (`.invalid` is reserved): a pattern that matches them lets in any site. */
const FOREIGN = ['https://example.invalid', 'http://example.invalid']
/** Throw-away labels, long and short (a two-letter top-level domain), of letters, with a hyphen, of digits: for the classes and counts patterns use. */
const PROBE_LABELS = ['zzportcullisprobe', 'zz-portcullis-probe', 'zzq', 'zz', '909']
/** Throw-away text glued between two runs of a pattern's literal host text (example + -zzq + .com). */
const FILLERS = ['zzq', '-zzq', '909']
export { MAX_PATTERN_ORIGIN }
/**
 * Suffixes under which anyone can have a name: common top-level domains, public suffixes of two
 * labels, and shared hosting (Public Suffix List, private section), where each name is a stranger's app.
 */
const PUBLIC_SUFFIXES = [
  'com', 'net', 'org', 'io', 'dev', 'app', 'co', 'ai', 'me', 'us', 'uk', 'de', 'fr', 'eu', 'nl', 'ca', 'au', 'in', 'jp', 'br',
  'ru', 'cn', 'ch', 'tv', 'cc', 'sh', 'info', 'biz', 'xyz', 'site', 'online', 'cloud', 'tech', 'store', 'live', 'page',
  'co.uk', 'org.uk', 'com.au', 'co.jp', 'com.br', 'co.in', 'co.nz',
  'herokuapp.com', 'github.io', 'gitlab.io', 'vercel.app', 'netlify.app', 'pages.dev', 'workers.dev', 'web.app',
  'firebaseapp.com', 'azurewebsites.net', 'azurestaticapps.net', 'cloudfront.net', 'amazonaws.com', 's3.amazonaws.com',
  'appspot.com', 'ngrok.io', 'ngrok.app', 'ngrok-free.app', 'onrender.com', 'fly.dev', 'glitch.me', 'repl.co', 'surge.sh',
  'blogspot.com', 'trycloudflare.com'
]
/** A site anyone could register under each suffix: a pattern that matches one lets in every such site (`/^https:\/\/[a-z0-9-]+\.com$/`). */
const REGISTRABLE = ['https', 'http'].flatMap(scheme => PUBLIC_SUFFIXES.flatMap(suffix => PROBE_LABELS.map(label => `${scheme}://${label}.${suffix}`)))
/** A country's second level where anyone can have a name (co.za, com.mx, org.ar), the top-level domain of two letters. */
const SECOND_LEVEL = /^(?:co|com|net|org|gov|edu|ac|or|ne|go|gob|nic|mil)\.[a-z]{2}$/
const ANY_SITE = "with credentials: true, any site could read your users' responses: list the origins"
/** A host name's characters, for the text quoted around an unescaped `.`. */
const HOST_CHAR = /[A-Za-z0-9-]/

/** What an origin list allows, compiled once: any origin, exact ones (a Set), patterns. */
export interface OriginMatcher {
  readonly any: boolean
  allows (origin: string): boolean
}

/**
 * originProblem's verdicts, by credentials and entry: routes given one origin list as distinct
 * configs (`origins: *list`, or written out on each) are each checked, and 5,500 routes of one
 * 70-entry list took seconds to load, with credentials and patterns 15 s. Pure, so kept across
 * reloads too, as linear.ts keeps its checks.
 */
const verdicts = new Map<string, string | undefined>()
const MAX_VERDICTS = 10_000

/**
 * What is wrong with an origin entry: one no browser's Origin could ever equal (a path, a default
 * port, no scheme, a host not in punycode, a mistyped or unanchored regular expression), or, with
 * credentials, one that lets in any site (`*`, `https://*`, `*.com`, a regular expression as broad).
 */
export function originProblem (entry: string, credentials: boolean): string | undefined {
  const key = `${String(credentials)} ${entry}`
  if (verdicts.has(key)) return verdicts.get(key)
  const problem = problemOf(entry, credentials)
  if (verdicts.size >= MAX_VERDICTS) verdicts.delete(verdicts.keys().next().value as string)
  verdicts.set(key, problem)
  return problem
}

function problemOf (entry: string, credentials: boolean): string | undefined {
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
  const suffix = rest.slice(1).split(':')[0] as string
  if (credentials && !suffix.includes('.')) return `${written} lets in every site of a top-level domain: ${ANY_SITE}`
  if (credentials && publicSuffix(suffix)) return `${written} lets in every site under ${suffix}, where anyone can have one: ${ANY_SITE}`
  return undefined
}

function regexProblem (source: string, flags: string, credentials: boolean): string | undefined {
  try { RegExp(source, flags) } catch (err) { return (err as Error).message }
  if (!anchored(source)) {
    return 'a regular expression must be anchored, /^...$/, alternatives grouped inside (/^(?:a|b)$/): unanchored, it matches other sites too (/a\\.example\\.com/ matches https://a.example.com.evil.net)'
  }
  // Credentials or not: tried on every request with an Origin, a slow pattern stalls the gateway.
  const slow = slowMatchingProblem(source, flags)
  if (slow !== undefined) return slow
  if (!credentials) return undefined
  // As requests match it: compiled as written, a pattern the linear engine runs may backtrack for hours on a probe.
  const regex = originRegExp(source, flags)
  const foreign = FOREIGN.find(origin => regex.test(origin))
  if (foreign !== undefined) return `it lets in any site (${foreign} matches): ${ANY_SITE}`
  const registrable = [...REGISTRABLE, ...spelledSuffixSites(hostRuns(tokenize(source)))].find(origin => regex.test(origin))
  if (registrable !== undefined) return anyoneCanRegister(registrable)
  return looseness(source, flags, regex, true)
}

const anyoneCanRegister = (origin: string) => `it lets in sites anyone can register (${origin} matches): ${ANY_SITE}`

/** What an origin entry likely lets in beyond what was meant: warned of without credentials (with them, originProblem refuses it). */
export function originWarning (entry: string): string | undefined {
  const regex = REGEX.exec(entry)
  if (regex === null) return undefined
  const [source, flags] = [regex[1] as string, regex[2] as string]
  // The probes run the pattern: one that backtracks (refused by originProblem) could hang the load.
  return slowMatchingProblem(source, flags) === undefined ? looseness(source, flags, originRegExp(source, flags), false) : undefined
}

/**
 * A pattern's host spelled out loosely: an unescaped `.` where a name goes, literal names a probe
 * can be glued to, or what it matches changed into a name of anyone's (sampleProbe). With
 * `credentials`, also a name of anyone's where the pattern names none (`[a-z]+\\d\\.com`): as broad as
 * REGISTRABLE's, which without credentials is allowed, as `*` is.
 */
function looseness (source: string, flags: string, regex: RegExp, credentials: boolean): string | undefined {
  const tokens = tokenize(source)
  const loose = looseDot(source, tokens) ?? gluedProbe(tokens, regex)
  if (loose !== undefined) return loose
  const probe = sampleProbe(source, flags, regex, hostRuns(tokens), credentials)
  if (probe === undefined) return undefined
  return probe.named ? spelledOutMore(probe.origin) : anyoneCanRegister(probe.origin)
}

const spelledOutMore = (origin: string) =>
  `it lets in more than the names it spells out (${origin} matches), which may be anyone's site; write the labels meant (any subdomain: ([a-z0-9-]+\\.)*), or list the origins`

/** A piece of a regular expression's source: a literal character (`\\.` is `.`, as is `[.]`), `.`, a quantifier, a group's ends, or other syntax. */
interface Token {
  kind: 'char' | 'dot' | 'quantifier' | 'open' | 'close' | 'other'
  text: string
  at: number
  end: number
  /** open: a lookaround, which lets nothing in. */
  look?: boolean
  /** quantifier: its least count is 0. */
  optional?: boolean
  /** quantifier: its least count. */
  min?: number
}

function tokenize (source: string): Token[] {
  const tokens: Token[] = []
  for (let at = 0; at < source.length;) {
    const { literal, ...token } = readToken(source.slice(at))
    tokens.push({ ...token, at, end: at + token.text.length, text: literal ?? token.text })
    at += token.text.length
  }
  return tokens
}

/** The token `rest` starts with, its source as `text` (and the character meant, for `\\.` or `[.]`). */
function readToken (rest: string): Omit<Token, 'at' | 'end'> & { literal?: string } {
  const c = rest[0] as string
  const quantifier = QUANTIFIER.exec(rest)
  if (quantifier !== null) {
    const min = c === '+' ? 1 : Number(quantifier[1] ?? 0)
    return { kind: 'quantifier', text: quantifier[0], optional: min === 0, min }
  }
  if (c === '\\') {
    const escape = (ESCAPE.exec(rest) as RegExpExecArray)[0]
    return /^\\[^A-Za-z0-9]$/.test(escape) ? { kind: 'char', text: escape, literal: escape.slice(1) } : { kind: 'other', text: escape }
  }
  if (c === '[') {
    let end = 1
    while (end < rest.length && rest[end] !== ']') end += rest[end] === '\\' ? 2 : 1
    const text = rest.slice(0, end + 1)
    return text === '[.]' || text === '[\\.]' ? { kind: 'char', text, literal: '.' } : { kind: 'other', text }
  }
  if (c === '(') {
    const group = GROUP.exec(rest) as RegExpExecArray
    return { kind: 'open', text: group[0], look: group[1] !== undefined }
  }
  return { kind: c === '.' ? 'dot' : c === ')' ? 'close' : '|^$'.includes(c) ? 'other' : 'char', text: c }
}

/** Whether the tokens from `from` are literal characters spelling `text`. */
function spells (tokens: readonly Token[], from: number, text: string): boolean {
  return [...text].every((c, i) => tokens[from + i]?.kind === 'char' && tokens[from + i]?.text === c)
}

/**
 * An unescaped `.` where a host name goes matches any character, `.*` (`.+`, `.{1,}`) any run of
 * them, dots included: `app.example` lets in `appxexample`, `.*example\\.com` `evilexample.com`,
 * `example\\.com.*` `example.com.evil.net`, sites anyone can register. Spared: a `.` in a lookaround;
 * one ending the scheme's part (`.+:\\/\\/`); one right after a port's `:`; and one followed, past
 * a group's end, by a dot that must be there (`.+\\.example\\.com`), for which what follows that dot is
 * what names the site (probed: regexProblem, gluedProbe).
 */
function looseDot (source: string, tokens: readonly Token[]): string | undefined {
  const host = tokens.findIndex((t, k) => spells(tokens, k, '//'))
  const looks: boolean[] = []
  for (let k = 0; k < tokens.length; k++) {
    const token = tokens[k] as Token
    if (token.kind === 'open') looks.push(token.look === true || looks.at(-1) === true)
    else if (token.kind === 'close') looks.pop()
    if (token.kind !== 'dot' || looks.at(-1) === true) continue
    const quantifier = tokens[k + 1]?.kind === 'quantifier' ? tokens[k + 1] : undefined
    let next = quantifier === undefined ? k + 1 : k + 2
    if (spells(tokens, next, '//') || spells(tokens, next, '://')) continue
    if (host >= 0 && k - 1 > host + 1 && spells(tokens, k - 1, ':')) continue
    while (tokens[next]?.kind === 'close') next += tokens[next + 1]?.kind === 'quantifier' ? 2 : 1
    if (spells(tokens, next, '.') && tokens[next + 1]?.optional !== true) continue
    return dotMessage(source, token.at, quantifier)
  }
  return undefined
}

function dotMessage (source: string, at: number, quantifier: Token | undefined): string {
  let from = at
  while (from > 0 && HOST_CHAR.test(source[from - 1] as string) && source[from - 2] !== '\\') from--
  let to = quantifier?.end ?? at + 1
  while (to < source.length && HOST_CHAR.test(source[to] as string)) to++
  const before = source.slice(from, at)
  const after = source.slice(quantifier?.end ?? at + 1, to)
  const dots = `.${quantifier?.text ?? ''}`
  if (quantifier === undefined || dots.startsWith('.?')) {
    return `an unescaped \`.\` matches any character: ${before}${dots}${after} lets in ${before}x${after} too, which may be anyone's site; did you mean ${before}\\${dots}${after}?`
  }
  const fill = [after !== '' ? 'evil' : before !== '' ? '.evil.net' : 'evil.net', 'x'].find(s => RegExp(`^${dots}$`).test(s)) ?? 'x'.repeat(quantifier.min as number)
  return `an unescaped \`${dots}\` matches any characters, dots included: ${before}${dots}${after} lets in ${before}${fill}${after} too, which may be anyone's site; write the labels meant (any subdomain: ([a-z0-9-]+\\.)*), or list the origins`
}

/**
 * The runs of literal host text in a pattern (`example.com` in `\\w*example\\.com`), each tried with
 * throw-away text glued on where no name of the operator's can be: before a run of one label and a
 * public suffix (zzqexample.com), after a run as a label (app.example.com.zzq, example.zz,
 * ...zzportcullisprobe.com) or within its last (app.example.comzzq), and between two runs in a row
 * (example-zzq.com for `example(?:-[a-z]+)?\\.com`). The pattern's own text, so classes and escapes
 * (`\\S*`, `[^.]*`) as broad as `.*` are caught too. A probe that matches counts only when its
 * registrable domain is none the pattern spells out (shop909.example.com for `shop\\d*\\.example\\.com`
 * is the operator's), and is no address (192.168.909.10).
 */
function gluedProbe (tokens: readonly Token[], regex: RegExp): string | undefined {
  const runs = hostRuns(tokens)
  const hosts: string[] = []
  for (const text of runs) {
    const label = text.endsWith('.') ? text : `${text}.`
    for (const prefix of ['', ...PROBE_LABELS]) {
      hosts.push(`${prefix}${label}zzq`, `${prefix}${label}zz`, `${prefix}${label}zzportcullisprobe.com`)
      if (text.includes('.') && !text.endsWith('.')) hosts.push(`${prefix}${text}zzq`)
    }
    const first = text.split('.')[0] as string
    if (first !== '' && publicSuffix(text.slice(first.length + 1))) hosts.push(...PROBE_LABELS.map(prefix => `${prefix}${text}`))
  }
  runs.slice(1).forEach((text, i) => {
    const before = runs[i] as string
    // Text next to a literal `--` is the operator's own: hosting reserves such names for its own use
    // (Netlify's deploy-preview-42--myapp), which no one else can create.
    if (!before.endsWith('--') && !text.startsWith('--')) hosts.push(...FILLERS.map(filler => `${before}${filler}${text}`))
  })
  const probe = hosts.filter(h => strangers(h, runs)).flatMap(h => [`https://${h}`, `http://${h}`]).find(origin => regex.test(origin))
  return probe === undefined ? undefined : spelledOutMore(probe)
}

/** Whether a probe's host, if matched, is a stranger's: its registrable domain none the pattern's runs spell out, and no address (192.168.909.10). */
function strangers (host: string, runs: readonly string[]): boolean {
  const name = registrableDomain(host)
  return !/^\d+$/.test(host.split('.').at(-1) as string) && !runs.some(text => `.${text}.`.includes(`.${name}.`))
}

/** Samples of a pattern probed. */
const MAX_SAMPLES = 64
/**
 * The sample probes' work at load, as the characters they run the pattern on times its program's
 * size (linearSize): at most about 1.5 s on Node 20 (linear.ts: 30 ms for 300 characters that keep
 * every step of MAX_PROGRAM busy); a list of 80 names uses a sixth of it, in about 300 runs.
 */
const PROBE_STEPS = 30_000_000

/**
 * What the pattern matches, changed where a name anyone can register goes: in each sample
 * (samples.ts), the labels from the registrable one on (example and com in www.example.com) each
 * replaced by a throw-away label, with FILLERS glued at its ends, or with a part the pattern leaves
 * open replaced; and a label added. Unlike gluedProbe's runs, a sample has what groups and classes
 * before the host text require (`(?:www|shop)\\.example\\.[a-z]{2}`). As in gluedProbe, a change
 * next to a literal `--` is the operator's (a Netlify deploy preview), but for punycode's `xn--`,
 * which starts names anyone can have. named: the sample's registrable label holds literal text of
 * the pattern's (a look-alike of it was not meant); only such samples without `credentials`.
 */
function sampleProbe (source: string, flags: string, regex: RegExp, runs: readonly string[], credentials: boolean): { origin: string, named: boolean } | undefined {
  let budget = PROBE_STEPS / Math.max(1, linearSize(source, flags))
  const matches = (origin: string) => (budget -= origin.length) >= 0 && regex.test(origin)
  const tried = new Set<string>()
  for (const [k, sample] of samples(source, flags, MAX_SAMPLES).entries()) {
    if (budget < 0) return undefined
    const from = sample.text.indexOf('://') + 3
    const colon = sample.text.indexOf(':', from)
    const to = colon < 0 ? sample.text.length : colon
    const host = sample.text.slice(from, to)
    // A host of one label (localhost, an intranet's) is under no suffix where anyone can have a name.
    if (from < 3 || !/^[a-z0-9-]*\.[a-z0-9.-]*$/.test(host)) continue
    const labels = labelsOf(host, sample.open.slice(from, to))
    const first = labels.length - registrableDomain(host).split('.').length
    const own = labels[first] as Label
    const named = [...own.text].some((c, i) => own.open[i] === '0' && /[a-z0-9]/.test(c) && !(i < 4 && own.text.startsWith('xn--')))
    if ((!named && !credentials) || !matches(sample.text)) continue
    for (const changed of changes(labels, first, k === 0)) {
      const origin = `${sample.text.slice(0, from)}${changed}${sample.text.slice(to)}`
      if (origin.length > MAX_PATTERN_ORIGIN || tried.has(origin) || !strangers(changed, runs)) continue
      tried.add(origin)
      if (matches(origin)) return { origin, named }
    }
  }
  return undefined
}

/** A host's label, with, per character, whether the pattern leaves it open (a Sample's). */
interface Label { text: string, open: string }

function labelsOf (host: string, open: string): Label[] {
  let at = 0
  return host.split('.').map(text => {
    const label = { text, open: open.slice(at, at + text.length) }
    at += text.length + 1
    return label
  })
}

/**
 * The hosts sampleProbe tries for a sample's labels, `first` its registrable one. A label all of
 * literal text is changed in the shortest sample only (`all`): the other alternatives and optional
 * parts that could match a change show open in samples of their own (a list of names: 3 runs each).
 */
function changes (labels: readonly Label[], first: number, all: boolean): string[] {
  const host = labels.map(l => l.text).join('.')
  const hosts = [`${host}.zzq`, `${host}.zz`, `${host}.zzportcullisprobe.com`]
  for (let i = first; i < labels.length; i++) {
    const { text, open } = labels[i] as Label
    if (!all && !open.includes('1')) continue
    const put = (label: string) => hosts.push([...labels.slice(0, i).map(l => l.text), label, ...labels.slice(i + 1).map(l => l.text)].join('.'))
    PROBE_LABELS.forEach(put)
    const runs = openRuns(open)
    const free = runs.filter(([a, b]) => !reserved(text, open, a, b))
    // Text glued to an open end is glued to its run: reserved as that run is.
    if (runs[0]?.[0] !== 0 || free[0]?.[0] === 0) FILLERS.forEach(f => put(`${f.startsWith('-') ? `${f.slice(1)}-` : f}${text}`))
    if (runs.at(-1)?.[1] !== text.length || free.at(-1)?.[1] === text.length) FILLERS.forEach(f => put(`${text}${f}`))
    // Also as long as the run, for a count (`[a-z0-9]{9}`, `\\d{5}`).
    for (const [a, b] of free) for (const probe of [...PROBE_LABELS, 'z'.repeat(b - a), '9'.repeat(b - a)]) put(`${text.slice(0, a)}${probe}${text.slice(b)}`)
  }
  return hosts
}

/** The runs of open characters in a label, as [from, to). */
function openRuns (open: string): Array<[number, number]> {
  return [...open.matchAll(/1+/g)].map(run => [run.index, run.index + run[0].length])
}

/** Whether an open run [a, b) of a label is next to a literal `--` (not punycode's, at the label's third character). */
function reserved (text: string, open: string, a: number, b: number): boolean {
  const literal = (i: number) => i >= 0 && i !== 2 && text.slice(i, i + 2) === '--' && open.slice(i, i + 2) === '00'
  return literal(a - 2) || literal(b)
}

/** The runs of literal host text in a pattern's tokens, once each (see gluedProbe). */
function hostRuns (tokens: readonly Token[]): string[] {
  const runs: string[] = []
  let run = ''
  // The scheme's text is no host's.
  const host = tokens.findIndex((t, k) => spells(tokens, k, '//'))
  for (let k = host < 0 ? 0 : host + 2; k < tokens.length; k++) {
    const token = tokens[k] as Token
    const literal = token.kind === 'char' && /^[A-Za-z0-9.-]$/.test(token.text) && tokens[k + 1]?.kind !== 'quantifier'
    if (literal) run += token.text.toLowerCase()
    if (!literal || k === tokens.length - 1) {
      if (/[a-z0-9]/.test(run) && !runs.includes(run)) runs.push(run)
      run = ''
    }
  }
  return runs
}

/** Whether anyone can have a name right under `suffix`: a top-level domain (as for a wildcard), a suffix of the list, a country's co.za. */
function publicSuffix (suffix: string): boolean {
  return /^(?:[a-z]{2,63}|xn--[a-z0-9-]+)$/.test(suffix) || PUBLIC_SUFFIXES.includes(suffix) || SECOND_LEVEL.test(suffix)
}

/**
 * Throw-away sites right under the public suffix a run of host text ends with (`\\.es`,
 * `\\.co\\.za`), probed as REGISTRABLE's: a pattern that matches one (`[a-z0-9-]+\\.es`, `.*\\.mx`)
 * lets in every site there, whether or not the list has the suffix. Only a run that ends the host can match.
 */
function spelledSuffixSites (runs: readonly string[]): string[] {
  const suffixes = runs.flatMap(run => {
    const labels = run.split('.')
    return [1, 2].filter(n => labels.length >= n).map(n => labels.slice(-n).join('.')).filter(publicSuffix)
  })
  return ['https', 'http'].flatMap(scheme => suffixes.flatMap(suffix => PROBE_LABELS.map(label => `${scheme}://${label}.${suffix}`)))
}

/** The name under a public suffix (publicSuffix, the last label at least) that `host` belongs to: example.co.uk for a.example.co.uk. */
function registrableDomain (host: string): string {
  const labels = host.split('.')
  for (let i = 1; i < labels.length; i++) if (publicSuffix(labels.slice(i).join('.'))) return labels.slice(i - 1).join('.')
  return labels.slice(-2).join('.')
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
    else if (regex !== null) patterns.push(originRegExp(regex[1] as string, regex[2] as string))
    else if (written.includes('*')) patterns.push(wildcard(written))
    else exact.add(written)
  }
  // V8 compiles a regexp at its first match (the backtracking engine again, to machine code, at the
  // next): here, at load, rather than at the first requests.
  for (const p of patterns) for (let i = 0; i < 2; i++) p.test(FOREIGN[0] as string)
  const strictNull = credentials && !exact.has('null')
  return {
    any,
    allows (origin) {
      if (strictNull && origin === 'null') return false
      if (any || exact.has(origin)) return true
      if (origin.length > MAX_PATTERN_ORIGIN) return false
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
