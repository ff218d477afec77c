import t from 'tap'
import { notModified, preconditionFailed } from './conditional.ts'
import { growth } from '../../test/helpers/growth.ts'

// An entity-tag list's element was matched with [ \t]* on both sides of an optional tag: for a run
// of spaces with no tag, every split of it was tried, so a client's If-None-Match or If-Match of 16 KB
// of spaces (on a cached route) cost 120-220 ms of the event loop per request.
t.test('If-None-Match and If-Match of a long run of spaces are read in time linear in their length', async t => {
  const spaces = (n: number) => `${' '.repeat(n - 2)}"a`
  const stored = { etag: '"a"' }
  t.equal(notModified({ 'if-none-match': spaces(16384) }, stored), false, 'no list: not a 304')
  t.equal(preconditionFailed({ 'if-match': spaces(16384) }, stored), true, 'no list: the precondition fails')
  for (const [name, ratio] of [
    ['If-None-Match', growth(v => notModified({ 'if-none-match': v }, stored), spaces)],
    ['If-Match', growth(v => preconditionFailed({ 'if-match': v }, stored), spaces)]
  ] as const) {
    // Linear: ~16; quadratic: ~256.
    t.ok(ratio < 40, `${name}: 16 KB against 1 KB: ${ratio.toFixed(1)} times longer per call`)
  }
})

t.test('white space around the tags and empty elements still allowed', async t => {
  t.equal(notModified({ 'if-none-match': ' \t, "x" ,\tW/"a"\t , ' }, { etag: '"a"' }), true)
  t.equal(notModified({ 'if-none-match': '"x" "a"' }, { etag: '"a"' }), false, 'two tags without a comma: not a list')
  t.equal(preconditionFailed({ 'if-match': ' "x" ,  "a"  ' }, { etag: '"a"' }), false)
})
