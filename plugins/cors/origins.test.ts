import t from 'tap'
import { compileOrigins, MAX_PATTERN_ORIGIN, originProblem, originWarning } from './origins.ts'

t.test('an Origin longer than any a browser sends is never tried against a pattern, only against exact entries', async t => {
  const origins = compileOrigins(['/^https:\\/\\/[a-z]+\\.example\\.com$/', '*.example.net', `https://${'b'.repeat(300)}.example.org`], false)
  const longest = `https://${'a'.repeat(MAX_PATTERN_ORIGIN - 'https://.example.com'.length)}.example.com`
  t.equal(longest.length, MAX_PATTERN_ORIGIN)
  const test = RegExp.prototype.test
  let tried = 0
  // Counted: the patterns' runs on the origins asked about (tap's own tests aside).
  RegExp.prototype.test = function (this: RegExp, s: string) { if (s.includes('aaaa')) tried++; return test.call(this, s) }
  t.teardown(() => { RegExp.prototype.test = test })
  t.equal(origins.allows(longest), true, 'at the bound, patterns apply')
  t.ok(tried > 0)
  tried = 0
  t.equal(origins.allows(`https://a${longest.slice('https://'.length)}`), false, 'one character more: no pattern lets it in')
  t.equal(origins.allows(`https://${'a'.repeat(MAX_PATTERN_ORIGIN)}.example.net`), false, 'nor a wildcard')
  t.equal(tried, 0, 'without running a pattern')
  t.equal(origins.allows(`https://${'b'.repeat(300)}.example.org`), true, 'an exact entry still matches')
})

t.test('a pattern refused as slow (ReDoS) is never run by the load-time probes, credentials or not', async t => {
  // The first with i, which V8's linear-time engine cannot run; the second one it can, but whose ways to match nothing it does not bound (12.9 s to load).
  const cases: Array<[string, string, RegExp]> = [['^https:\\/\\/([a-z]+)+\\.example\\.com$', 'i', /can match the same text in more than one way/],
    [`^https:\\/\\/${'(?:|)'.repeat(24)}[a-z]+\\.example\\.com$`, '', /can match nothing in more than 1024 ways/]]
  const test = RegExp.prototype.test
  let runs = 0
  const sources = cases.map(c => c[0])
  RegExp.prototype.test = function (this: RegExp, s: string) { if (sources.includes(this.source)) runs++; return test.call(this, s) }
  t.teardown(() => { RegExp.prototype.test = test })
  for (const [source, flags, problem] of cases) {
    const entry = `/${source}/${flags}`
    t.match(originProblem(entry, true), problem)
    t.equal(originProblem(entry, false), originProblem(entry, true))
    t.equal(originWarning(entry), undefined, 'no warning: the config error says what is wrong')
  }
  t.equal(runs, 0)
})
