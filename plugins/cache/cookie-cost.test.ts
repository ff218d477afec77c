import t from 'tap'
import { compileCookieBypass, compileKey, MAX_COOKIE_NAMES } from './cache-key.ts'

// Names are decoded as upstreams read them (`%73ession` is `session`). querystring.unescape threw on
// each malformed escape (`%a`), ~10 µs a throw: a 16 KB Cookie of `%a;` cost ~97 ms of CPU per
// request on any route with bypass.cookies, a query of `%a=1&` as much with key.query. The cost is
// compared with well-formed escapes' of the same size, in the same run: no absolute timing.

/** The median time of `f` over a few runs, in ms. */
function median (f: () => unknown, runs = 15): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    f()
    times.push(performance.now() - start)
  }
  return times.sort((a, b) => a - b)[runs >> 1] as number
}

t.test('bypass.cookies: malformed escapes cost what well-formed ones do, and the names read are bounded', async t => {
  const bypass = compileCookieBypass(['session']) as (cookie: string) => boolean
  const malformed = '%a;'.repeat(5_300)
  const wellFormed = '%61;'.repeat(5_300)
  const pluses = '+;'.repeat(7_900)
  // A header that may hold a bypass name, with more names than are read: taken for one that does (the safe side).
  t.equal(bypass(malformed), true)
  t.equal(bypass(pluses), true)
  t.equal(bypass('a=1 '.repeat(MAX_COOKIE_NAMES + 1) + 'x%62=1'), true, 'whitespace-separated names count too')
  t.equal(bypass(`${'%61=1;'.repeat(MAX_COOKIE_NAMES - 1)} theme=dark`), false, 'up to the bound, read')
  t.equal(bypass(`${'%61=1;'.repeat(MAX_COOKIE_NAMES - 1)} session=x`), true)
  // A header with neither a bypass name's form nor a `%` or `+` in a name is not read past the pre-check, however long.
  t.equal(bypass('a=b; '.repeat(4_000)), false)
  const base = median(() => bypass(wellFormed))
  for (const [name, cookie] of [['%a;', malformed], ['+;', pluses]]) {
    const took = median(() => bypass(cookie as string))
    t.ok(took < 3 * base + 1, `${name as string}: ${took.toFixed(2)} ms, well-formed escapes ${base.toFixed(2)} ms`)
  }
})

t.test('key.query: malformed escapes in names cost what well-formed ones do', async t => {
  const key = compileKey('r', { query: { ignore: ['utm_source'] } })
  const strict = compileKey('r', { query: { include: ['id'] } })
  for (const [name, build] of [['ignore', key], ['include', strict]] as const) {
    const base = median(() => build('/p', '?' + '%61=1&'.repeat(3_100), 'h', {}))
    const took = median(() => build('/p', '?' + '%a=1&'.repeat(3_100), 'h', {}))
    t.ok(took < 3 * base + 1, `${name}: ${took.toFixed(2)} ms, well-formed escapes ${base.toFixed(2)} ms`)
  }
  // As decoded before: a malformed escape kept as sent, a run of escapes read as UTF-8, `+` a space.
  const h = { 'x-forwarded-host': 'h' }
  t.equal(key('/p', '?%75tm_source=1&%a=2&caf%C3%A9=3&a+b=4&%ZZ=5', 'h', h).primary, 'c:r:/p?%ZZ=5&%a=2&a+b=4&caf%C3%A9=3#h||')
  t.equal(key('/p', '?utm%5Fsource=1&utm_source%00=2&utm+source=3', 'h', h).primary, 'c:r:/p?utm+source=3&utm_source%00=2#h||')
  t.equal(strict('/p', '?%69d=1&%49D=2', 'h', h).ambiguous, true, '%49D reads as ID, a form of id')
  t.equal(strict('/p', '?%69d=1&x=%ZZ', 'h', h).primary, 'c:r:/p?%69d=1#h||')
})
