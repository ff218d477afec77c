import t from 'tap'
import { linearSize, MAX_PATTERN, MAX_PROGRAM, originRegExp, slowMatchingProblem } from './linear.ts'
import { compileOrigins, originProblem } from './origins.ts'

const P = '^https:\\/\\/'
/** Capturing groups in `regex`'s source. */
const captures = (regex: RegExp): number => (RegExp(`${regex.source}|`).exec('') as RegExpExecArray).length - 1
const NAMES = Array.from({ length: 40 }, (_, i) => `app${i}\\.customer-${i}\\.com`).join('|')

t.test('a pattern the linear-time engine runs is compiled without capturing groups (0.4 s per match with 390 of them on Node 20)', async t => {
  const nested = `${P}${'('.repeat(390)}[ab]${')*'.repeat(390)}$`
  t.equal(slowMatchingProblem(nested, ''), undefined, 'loads')
  const cases: Array<[string, string, string[]]> = [
    // Not tried as written: the backtracking engine takes exponential time on it.
    [nested, '', []],
    [`${P}([a-z0-9-]+\\.)*example\\.com(:\\d+)?$`, '', ['https://a.b.example.com:8443', 'https://example.com', 'https://a..example.com']],
    [`${P}(\\d{1,3}\\.){3}\\d{1,3}$`, '', ['https://10.0.0.1', 'https://10.0.0']],
    [`${P}(?<app>[a-z]+)\\.example\\.com$`, 's', ['https://app.example.com', 'https://app.example.net']],
    // Parentheses escaped or in a class are no groups; without groups, \2 and \k read as they did (a character).
    [`${P}\\(x\\)[(\\]]\\\\(y)\\2\\k<a>$`, 'm', ['https://(x)(\\y\u0002k<a>', 'https://(x)]\\y\u0002k<a>', 'https://(x)(\\y2k<a>']]
  ]
  for (const [source, flags, origins] of cases) {
    const regex = originRegExp(source, flags)
    t.equal([...regex.flags].sort().join(''), [...`${flags}l`].sort().join(''), 'on the linear-time engine')
    t.equal(captures(regex), 0, source.slice(0, 60))
    const written = RegExp(source, flags)
    t.ok(captures(written) > 0)
    for (const origin of origins) t.equal(regex.test(origin), written.test(origin), `${origin}: as written`)
  }
  t.equal(originRegExp(`${P}\\(x\\)[(\\]]\\\\(y)$`, '').source, `${P}\\(x\\)[(\\]]\\\\(?:y)$`)
  const backtracking = originRegExp(`${P}([a-z]+)\\.example\\.com$`, 'i')
  t.equal(backtracking.flags, 'i', 'what the linear-time engine cannot run is compiled as written')
  t.equal(captures(backtracking), 1)
})

t.test('a pattern whose program for the linear-time engine is too large is refused, credentials or not (0.1 to 0.9 s per request)', async t => {
  // Counted repetitions copied out (130 times 32), and a class of many ranges with no count at all (660 times 32).
  for (const source of [`${P}${'([ab]{0,16})'.repeat(130)}$`, `${P}${'\\S?'.repeat(660)}$`, `${P}${'(?:.?){0,16}'.repeat(40)}$`]) {
    t.ok(source.length <= MAX_PATTERN, `${source.length} characters`)
    for (const credentials of [true, false]) {
      t.match(originProblem(`/${source}/`, credentials), /^V8's linear-time engine would run it as a program of about \d+ steps, more than 2000, each of which an Origin can keep busy at each of its characters .*`\[a-z\]\{0,16\}` 16 times.*: count less, or list the origins$/)
    }
  }
  // `^https:\/\/` and `$`: 10 steps.
  t.equal(linearSize(`${P}${'a{0,16}'.repeat(62)}$`, ''), 10 + 62 * 32)
  t.equal(slowMatchingProblem(`${P}${'a{0,16}'.repeat(62)}$`, ''), undefined, 'within the bound: loads')
  t.match(slowMatchingProblem(`${P}${'a{0,16}'.repeat(63)}$`, ''), /program of about 2026 steps, more than 2000/)
})

t.test('the program\'s size: a character one step, a class three per range, a counted repetition its copies', async t => {
  const sizes: Array<[string, number, string?]> = [
    ['a', 1], ['^', 1], ['[a-z0-9-]', 7], ['[^.]', 4], ['\\s', 28], ['[\\d.]', 4], ['[a-\\d]', 7], ['.', 10], ['.', 1, 's'],
    ['a|b', 4], ['a?', 2], ['a*', 3], ['a+', 4], ['[a-c]{0,16}', 32], ['[ab]', 4], ['(?:ab){2}', 4], ['(?:a{4}){4}', 16], ['(a{1,3}\\.){3}', 3 * (1 + 2 * 2 + 1)]
  ]
  for (const [source, size, flags = ''] of sizes) t.equal(linearSize(source, flags), size, `/${source}/${flags}`)
})

t.test('real patterns load, with credentials and without, and match as written', async t => {
  const cases: Array<[string, string[], string[]]> = [
    [`/${P}([a-z0-9-]+\\.)*example\\.com$/`, ['https://example.com', 'https://a.b.example.com'], ['https://evilexample.com']],
    [`/${P}(\\d{1,3}\\.){3}\\d{1,3}$/`, ['https://192.168.0.1'], ['https://192.168.0']],
    [`/${P}\\[([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\\]$/`, ['https://[2001:db8:0:0:0:0:0:1]'], ['https://[2001:db8::1]']],
    ['/^http:\\/\\/localhost:\\d+$/', ['http://localhost:3000'], ['http://localhost']],
    [`/${P}([a-z0-9-]+\\.)?example\\.com(:\\d+)?$/`, ['https://app.example.com:8443', 'https://example.com'], ['https://example.com:']],
    [`/${P}[a-z0-9-]+\\.example\\.com$/i`, ['https://App.Example.com'], ['https://example.com']],
    [`/${P}[\\p{L}\\d-]+\\.example\\.com$/u`, ['https://app.example.com'], ['https://a.b.example.com']],
    [`/${P}(?:${NAMES})$/`, ['https://app0.customer-0.com', 'https://app39.customer-39.com'], ['https://app40.customer-40.com']]
  ]
  t.ok(linearSize(`${P}(?:${NAMES})$`, '') < MAX_PROGRAM / 2, '40 names of 20 characters: half the bound at most')
  for (const [entry, allowed, refused] of cases) {
    t.equal(originProblem(entry, true), undefined, entry.slice(0, 60))
    t.equal(originProblem(entry, false), undefined)
    const origins = compileOrigins([entry], true)
    for (const origin of allowed) t.equal(origins.allows(origin), true, origin)
    for (const origin of refused) t.equal(origins.allows(origin), false, origin)
  }
})

t.test('origin patterns are compiled at load, not at the first request', async t => {
  const test = RegExp.prototype.test
  const ran: string[] = []
  RegExp.prototype.test = function (this: RegExp, s: string) { if (this.source.includes('example')) ran.push(this.flags); return test.call(this, s) }
  t.teardown(() => { RegExp.prototype.test = test })
  compileOrigins([`/${P}[a-z]+\\.example\\.com$/`, `/${P}[a-z]+\\.example\\.net$/i`], false)
  RegExp.prototype.test = test
  // V8 compiles a regexp at its first match, and the backtracking engine tiers up to machine code at the next.
  t.same(ran, ['l', 'l', 'i', 'i'])
})
