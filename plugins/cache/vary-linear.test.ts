import t from 'tap'
import { variantKey } from './vary.ts'
import { growth } from '../../test/helpers/growth.ts'

// A caseless list's white space around commas was taken out with /\s*,\s*/g, which scanned a run of
// spaces from each of them: a client's Accept-Language of 16 KB of spaces, on a route whose cached
// responses vary on it, cost ~90 ms of the event loop per request.
t.test('a Vary-listed Accept-Language of a long run of spaces is keyed in time linear in its length', async t => {
  const spaces = (n: number) => `a${' '.repeat(n - 2)}b`
  t.equal(variantKey(['accept-language'], { 'accept-language': spaces(16384) }), `|h:accept-language=${spaces(16384)}`, 'spaces within an item kept')
  const ratio = growth(v => variantKey(['accept-language'], { 'accept-language': v }), spaces)
  // Linear: ~16; quadratic: ~256.
  t.ok(ratio < 40, `16 KB against 1 KB: ${ratio.toFixed(1)} times longer per call`)
})

t.test('white space around commas still means nothing in a caseless list, case neither; elsewhere it stays', async t => {
  const headers = { accept: ' Text/HTML \t,\t application/JSON ,, x ', 'x-list': 'A , b' }
  t.equal(variantKey(['accept', 'x-list'], headers), '|h:accept=text/html,application/json,,x|h:x-list=A , b')
})
