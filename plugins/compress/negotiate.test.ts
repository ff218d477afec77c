import t from 'tap'
import { LRUCache } from 'lru-cache'
import { EncodingNegotiator } from './negotiate.ts'

const n = new EncodingNegotiator(['br', 'gzip', 'deflate'])

const cases: Array<[string | undefined, string]> = [
  [undefined, 'identity'],
  ['', 'identity'],
  ['gzip, deflate, br', 'br'],
  ['deflate, gzip', 'gzip'],
  ['gzip;q=1.0, br;q=0.5', 'gzip'],
  ['br;q=0.2, gzip;q=0.8, deflate;q=0.9', 'deflate'],
  ['*', 'br'],
  ['gzip;q=0.5, *;q=0.1', 'gzip'],
  ['br;q=0, *', 'gzip'],
  ['br;q=0, gzip;q=0.0, *', 'deflate'],
  ['*;q=0', 'identity'],
  ['identity;q=0', 'identity'],
  ['identity, gzip;q=0.5', 'identity'],
  ['gzip;q=0', 'identity'],
  ['*, gzip;q=0', 'br'],
  ['foo, bar;q=0.9', 'identity'],
  ['foo, gzip;q=0.1', 'gzip'],
  ['GZIP', 'gzip'],
  ['x-gzip', 'gzip'],
  ['br;q=0, x-gzip;q=0, *', 'deflate'],
  ['br, x-gzip;q=0.5', 'br'],
  // q = 0 among other parameters, in any position (RFC 9110 5.6.6).
  ['br;q=0, gzip;q=0;x=1, *', 'deflate'],
  ['br;q=0, gzip;x=1;q=0, *', 'deflate'],
  // A q-value is 0 to 1 with at most three decimals (RFC 9110 12.4.2).
  ['gzip;q=0.001', 'gzip'],
  ['gzip;q=1.000', 'gzip'],
  ['gzip;q=1.', 'gzip'],
  // One outside that grammar: maybe a refusal, which `*` does not undo.
  ...['q=0.0001', 'q=0.1e1', 'q=1.0001', 'q=1.5', 'q=-1', 'q=.5', 'q=', 'q', 'q="1"', 'q = 1', 'Q=0.5e0'].map(q => [`br;q=0, gzip;${q}, *`, 'deflate'] as [string, string]),
  ['br;q=0.0001', 'identity'],
  // A coding's own q-value holds against `*`'s, higher or lower (RFC 9110 12.5.3).
  ['gzip, *;q=1, br;q=0.4', 'gzip'],
  ['*;q=0.5, br;q=0.1', 'gzip'],
  ['br;q=0.1, *;q=0.5', 'gzip'],
  ['*;q=0.2, deflate;q=0.3', 'deflate'],
  ['*;q=0.5, identity', 'identity'],
  ['identity;q=0.5, *', 'br'],
  ['*;q=0.5, br;q=0, gzip;q=0', 'deflate'],
  // Named twice: the lower q-value.
  ['br, br;q=0, gzip;q=0.5', 'gzip'],
  [',, gzip ,', 'gzip']
]

for (const [header, expected] of cases) {
  t.equal(n.negotiate(header), expected, `${JSON.stringify(header)} → ${expected}`)
  t.equal(n.negotiate(header), expected, `${JSON.stringify(header)} again (cached) → ${expected}`)
}

t.test('accepts: whether a coding, offered or not, is acceptable as it is', async t => {
  const brOnly = new EncodingNegotiator(['br'])
  const cases: Array<[string | undefined, string, boolean]> = [
    [undefined, 'gzip', false], ['', 'gzip', false], ['gzip', 'gzip', true], ['*', 'gzip', true],
    ['*, gzip;q=0', 'gzip', false], ['gzip;q=0, *', 'gzip', false], ['x-gzip', 'gzip', true], ['x-gzip;q=0, *', 'gzip', false],
    ['br', 'gzip', false], ['identity', 'gzip', false], ['GZIP;Q=0.5', 'gzip', true],
    ['gzip;q=0;x=1, *', 'gzip', false], ['gzip;x=1;q=0, *', 'gzip', false],
    ['gzip;q=0.0001, *', 'gzip', false], ['gzip;q=0.1e1, *', 'gzip', false], ['gzip;q=0.001', 'gzip', true],
    ['gzip, gzip;q=0', 'gzip', false], ['*;x="a, gzip;q=0', 'gzip', false]
  ]
  for (const [header, coding, expected] of cases) {
    t.equal(brOnly.accepts(header, coding), expected, `${JSON.stringify(header)} takes ${coding}: ${expected}`)
    t.equal(brOnly.accepts(header, coding), expected, 'again (cached)')
  }
})

t.test('a long header value is worked out each time, never kept; routes offering the same codings share what is', async t => {
  // Any client can send unique values up to the header limit: kept, they held megabytes per route.
  const sets = t.capture(LRUCache.prototype, 'set', LRUCache.prototype.set)
  const long = `${'x-unknown, '.repeat(1400)}gzip;q=0.5, br;q=0.1`
  const first = new EncodingNegotiator(['deflate', 'gzip'])
  t.equal(first.negotiate(long), 'gzip')
  t.equal(first.negotiate(long), 'gzip', 'again, worked out anew')
  t.equal(first.accepts(long, 'br'), true)
  t.equal(first.accepts(long, 'zstd'), false)
  t.same(sets.args(), [], 'nothing kept')
  t.equal(first.negotiate('deflate;q=0.5, gzip'), 'gzip')
  t.equal(first.accepts('deflate;q=0.5, gzip', 'deflate'), true)
  t.equal(sets.args().length, 2, 'a short value is kept')
  const second = new EncodingNegotiator(['deflate', 'gzip'])
  t.equal(second.negotiate('deflate;q=0.5, gzip'), 'gzip')
  t.equal(second.accepts('deflate;q=0.5, gzip', 'deflate'), true)
  t.same(sets.args(), [], 'another route offering the same codings finds it kept')
  t.equal(second.negotiate('deflate, gzip'), 'deflate')
  t.equal(new EncodingNegotiator(['gzip', 'deflate']).negotiate('deflate, gzip'), 'gzip', 'one offering them in another order has its own')
})
