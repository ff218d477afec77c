import t from 'tap'
import { backtrackingProblem, emptyWaysProblem } from './backtracking.ts'

/** `(?:\xNN|...)` of k single characters from `from`. */
const alternatives = (from: number, k: number) => `(?:${Array.from({ length: k }, (_, i) => `\\x${(from + i).toString(16).padStart(2, '0')}`).join('|')})`

t.test('the budget bounds the check itself: two loops of many single-character alternatives are refused as too complex to check', async t => {
  // Few product states, but follow x follow (x follow) transitions looked at: 29 s at k = 96 when only states were charged.
  for (const k of [64, 96]) {
    t.equal(backtrackingProblem(`^${alternatives(1, k)}*${alternatives(0x81, k)}*$`, ''),
      'too complex to check for slow matching (ReDoS): split it into several simpler entries', `k = ${k}`)
  }
  t.equal(backtrackingProblem(`^${alternatives(1, 4)}*${alternatives(0x81, 4)}*$`, ''), undefined, 'a few alternatives are checked, and load')
})

/** `unit` written out `k` times in a row. */
const times = (unit: string, k: number) => unit.repeat(k)
const NAMES = ['app', 'api', 'admin', 'www', 'shop', 'blog', 'docs', 'help', 'mail', 'cdn', 'static', 'assets', 'auth', 'login', 'account', 'billing', 'pay', 'dash',
  'status', 'beta', 'dev', 'stage', 'test', 'demo', 'portal', 'store', 'news', 'media', 'img', 'video', 'search', 'mobile', 'm', 'support', 'forum', 'wiki', 'jobs',
  'careers', 'partners', 'events']

t.test('parts in a row that can read the same characters two ways multiply the ways, no repetition needed: refused past 1024, the text shown', async t => {
  const cases: Array<[string, string]> = [
    [`^https:\\/\\/${times('(?:[a-z]|\\w)', 28)}$`, 'https://aaaaaaaaaaa` in 2048 ways'],
    [`^https:\\/\\/${times('[a-z0-9-]?', 28)}\\.example\\.com$`, 'https://---` in 3276 ways'],
    [`^https:\\/\\/${times('(?:a|a)', 26)}$`, 'https://aaaaaaaaaaa` in 2048 ways']
  ]
  for (const [source, shown] of cases) {
    const problem = backtrackingProblem(source, '') ?? 'loads'
    t.ok(problem.startsWith(`it can read \`${shown} (alternatives or optional parts in a row that can take the same characters`), problem)
  }
  t.equal(backtrackingProblem(`^https:\\/\\/${times('(?:[a-z]|\\w)', 10)}$`, ''), undefined, '1024 ways load')
  t.equal(backtrackingProblem(`^https:\\/\\/${times('[a-z0-9-]?', 12)}\\.example\\.com$`, ''), undefined, 'C(12, 6) = 924 ways load')
  t.equal(backtrackingProblem(`^https:\\/\\/${times('[a-z0-9-]?', 28)}\\.example\\.com$`, 'u'), backtrackingProblem(`^https:\\/\\/${times('[a-z0-9-]?', 28)}\\.example\\.com$`, ''))
})

t.test('escapes are read as V8 reads them without the u flag: \\8 with no group 8, \\p{1,3} and \\u{1,3} are characters, repeated', async t => {
  for (const loop of ['(?:\\8+)+', '(?:\\9+)+', '(?:\\p{1,3})+', '(?:\\P{1,3})+', '(?:\\u{1,3})+']) {
    t.ok(backtrackingProblem(`^https:\\/\\/${loop}x$`, '')?.startsWith(`\`${loop}\` can match the same text in more than one way`), loop)
  }
  t.match(backtrackingProblem('^https:\\/\\/(?:\\p{Ll}+)+x$', 'u'), /can match the same text in more than one way/, 'with u, \\p{Ll} is a property')
  t.equal(backtrackingProblem('^https:\\/\\/(?:\\18)+x$', ''), undefined, '\\18 with no group is octal \\1 then 8')
  t.equal(backtrackingProblem('^https:\\/\\/(?:\\c1)+x$', ''), undefined, '\\c before no letter is a backslash, then c')
})

t.test('a backreference reads again what its group read: repeated next to the same characters, it is refused', async t => {
  for (const source of ['^https:\\/\\/(a)(?:\\1|a)+x$', '^https:\\/\\/(a)(?:\\1+)+x$', '^https:\\/\\/(?<n>a)(?:\\k<n>|a)+x$']) {
    t.match(backtrackingProblem(source, ''), /can match the same text in more than one way/, source)
  }
  t.equal(backtrackingProblem('^https:\\/\\/([a-z]+)\\.\\1\\.example\\.com$', ''), undefined)
  t.equal(backtrackingProblem('^https:\\/\\/(?:\\1(a))+x$', ''), undefined, 'a group not closed yet: nothing')
})

t.test('alternations of literal names, in repeated groups, are checked within the budget and load', async t => {
  for (const k of [20, 40]) {
    const names = NAMES.slice(0, k).join('|')
    t.equal(backtrackingProblem(`^https:\\/\\/(?:(?:${names})-)*(?:(?:${names})\\.)*example\\.com$`, ''), undefined, `${k} names`)
  }
})

t.test('groups in a row whose alternatives can each match nothing multiply the ways to match nothing: refused past 1024, the groups shown', async t => {
  const cases: Array<[string, string]> = [[`^https:\\/\\/${'(?:|)'.repeat(24)}[a-z]+x$`, '(?:|)'.repeat(24)], [`^https:\\/\\/${'(?:\\b|)'.repeat(20)}[a-z]+x$`, '(?:\\b|)'.repeat(20)],
    ['^https:\\/\\/(?:a?|b?){20}x$', '(?:a?|b?){20}'], [`^https:\\/\\/${'(?:|)'.repeat(12)}[a-z]?${'(?:(?:|))'.repeat(12)}x$`, `${'(?:|)'.repeat(12)}[a-z]?${'(?:(?:|))'.repeat(12)}`]]
  for (const [source, shown] of cases) {
    t.ok(backtrackingProblem(source, '')?.startsWith(`\`${shown}\` can match nothing in more than 1024 ways`), source)
    t.equal(emptyWaysProblem(source, ''), backtrackingProblem(source, ''))
  }
  // Fewer ways in a row, but V8's compiler is exponential in runs of them split by a character or two (20 s): refused all the same.
  for (const source of [`^https:\\/\\/${'(?:|)'.repeat(10)}[a-z]+x$`, `^https:\\/\\/${'(?:|)'.repeat(10)}a${'(?:|)'.repeat(10)}x$`, '^https:\\/\\/(?:a?|\\b)x$']) {
    t.match(emptyWaysProblem(source, ''), /has more than one alternative that can match nothing/, source)
  }
  for (const source of ['^https:\\/\\/(?:www\\.|)example\\.com$', '^https:\\/\\/(?:a|b?)x$', '^https:\\/\\/(?:app|api)?\\.example\\.com$']) {
    t.equal(emptyWaysProblem(source, ''), undefined, `one alternative matching nothing loads: ${source}`)
  }
  t.equal(emptyWaysProblem('^https:\\/\\/(?:www\\.)?(?:app\\.)?(?:[a-z]+\\.)?example\\.com$', ''), undefined, 'optional groups match nothing one way each')
})

t.test('a lookbehind is refused: V8 reads it backwards, the check forwards', async t => {
  t.match(backtrackingProblem('^https:\\/\\/(?:[a-z](?<!!(?:[a-z](?<!![a-z]*[a-z]*))*))*\\.example\\.com$', ''), /^it uses a lookbehind \(`\(\?<!`\)/)
  t.match(backtrackingProblem('^https:\\/\\/(?<=h.*)x$', ''), /^it uses a lookbehind \(`\(\?<=`\)/)
  t.equal(backtrackingProblem('^(?!.*\\.old\\.example\\.com$)https:\\/\\/[a-z]+\\.example\\.com$', ''), undefined, 'a lookahead is read')
})
