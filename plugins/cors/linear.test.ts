import t from 'tap'
import { MAX_PATTERN, originRegExp, slowMatchingProblem } from './linear.ts'

t.test('a pattern is checked once per process: a reload checks again none it checked', async t => {
  // With i, which V8's linear-time engine cannot run: the full check, whose automaton tries each character on each atom.
  const source = '^https:\\/\\/(?:[a-z0-9-]+\\.)*[a-z0-9-]+-[a-z0-9-]+\\.site7\\.com$'
  const test = RegExp.prototype.test
  t.teardown(() => { RegExp.prototype.test = test })
  /** The regexps run by one check (tap's own asserts aside). */
  const runs = (check: () => unknown): number => {
    let n = 0
    RegExp.prototype.test = function (this: RegExp, s: string) { n++; return test.call(this, s) }
    const problem = check()
    RegExp.prototype.test = test
    t.equal(problem, undefined)
    return n
  }
  t.ok(runs(() => slowMatchingProblem(source, 'i')) > 0, 'checked')
  t.equal(runs(() => slowMatchingProblem(source, 'i')), 0, 'not again')
  t.match(slowMatchingProblem('^https:\\/\\/([a-z]+)+x$', 'i'), /can match the same text in more than one way/, 'a refusal is kept too')
  t.match(slowMatchingProblem('^https:\\/\\/([a-z]+)+x$', 'i'), /can match the same text in more than one way/)
})

t.test('a pattern V8\'s linear-time engine can run gets only the checks every pattern gets, and is compiled for that engine alone', async t => {
  t.equal(slowMatchingProblem('^https:\\/\\/([a-z0-9]+-?)+\\.example\\.com$', ''), undefined)
  t.equal(slowMatchingProblem('^https:\\/\\/(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)$', ''), undefined, 'an IPv4 address')
  t.match(slowMatchingProblem(`^https:\\/\\/${'(?:|)'.repeat(24)}[a-z]+x$`, ''), /can match nothing in more than 1024 ways/)
  t.match(slowMatchingProblem('^https:\\/\\/([a-z0-9]+-?)+\\.example\\.com$', 'u'), /can match the same text in more than one way/, 'with u, the full check')
  t.equal(originRegExp('^https:\\/\\/([a-z0-9]+-?)+\\.example\\.com$', '').flags, 'l', 'never compiled nor run by the backtracking engine')
  t.equal(originRegExp('^https:\\/\\/[a-z]+\\.example\\.com$', 'i').flags, 'i', 'what the linear engine cannot run is compiled as written')
  // Runs of them split by a character: each run under 1024 ways, yet V8's backtracking compiler took 20 s at the second request.
  const split = `^https:\\/\\/${'(?:|)'.repeat(10)}[a-z]${'(?:|)'.repeat(10)}[a-z]${'(?:|)'.repeat(10)}\\.example\\.com$`
  for (const flags of ['', 'i']) t.match(slowMatchingProblem(split, flags), /more than one alternative that can match nothing/, `flags "${flags}"`)
})

t.test('a pattern longer than MAX_PATTERN is refused before any check or compile (25,000 characters took seconds of the serving thread at a reload)', async t => {
  const long = `^https:\\/\\/${'\\p{L}'.repeat(4900)}\\.example\\.com$`
  t.match(slowMatchingProblem(long, 'iu'), /characters long, more than 2000: split it/)
  t.equal(slowMatchingProblem(`^https:\\/\\/${'[a-z]'.repeat(MAX_PATTERN / 5 - 10)}$`, ''), undefined, 'a long one within the limit loads')
})
