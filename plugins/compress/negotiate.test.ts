import t from 'tap'
import { LRUCache } from 'lru-cache'
import { EncodingNegotiator } from './negotiate.ts'
import { available } from './codings.ts'
import { performance } from 'node:perf_hooks'

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

t.test('a long header value is never cached; routes offering the same codings share what is', async t => {
  // Any client can send unique values up to the header limit: kept, they held megabytes per route.
  const sets = t.capture(LRUCache.prototype, 'set', LRUCache.prototype.set)
  const long = `gzip;q=0.5, br;q=0.1, ${'x-unknown, '.repeat(40)}`
  const first = new EncodingNegotiator(['deflate', 'gzip'])
  t.equal(first.negotiate(long), 'gzip')
  t.equal(first.negotiate(long), 'gzip', 'again')
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

t.test('a long header costs no more than its first 64 elements and parameters; one longer is read as identity', async t => {
  /**
   * Least time per call (noise only adds) of accepts then negotiate, as a response reads its header;
   * the header in two spellings taken in turn, as two clients' would be, each read anew.
   */
  const perCall = (headers: readonly string[], calls: number): number => {
    let least = Infinity
    for (let round = 0; round < 9; round++) {
      const start = performance.now()
      for (let i = 0; i < calls; i++) {
        const header = headers[i % 2] as string
        n.accepts(header, 'gzip')
        n.negotiate(header)
      }
      least = Math.min(least, (performance.now() - start) / calls)
    }
    return least
  }
  // `gzip` then 16 KB of `;` (or of `;a=b`) was read whole, twice a response: ~2 ms of the event loop.
  for (const [name, make] of [['`;`', (n: number) => `gzip${';'.repeat(n - 4)}`], ['`;a=b`', (n: number) => `gzip${';a=b'.repeat((n - 4) / 4)}`]] as const) {
    // 300: just past the values cached, so worked out on every call too.
    const [short, long] = [[make(300), make(300).toUpperCase()], [make(16384), make(16384).toUpperCase()]]
    perCall(short, 1)
    perCall(long, 1)
    const ratio = perCall(long, 64) / perCall(short, 256)
    // Bounded: ~1; read whole: ~50.
    t.ok(ratio < 8, `gzip then ${name}: 16 KB against 300 B, ${ratio.toFixed(1)} times longer per call`)
    t.equal(n.negotiate(long[0]), 'identity', 'gzip, its parameters cut short, dropped')
  }
  const padded = (element: string) => `${'x, '.repeat(70)}${element}`
  t.equal(n.negotiate(padded('gzip')), 'identity', 'an element after the first 64 is not read')
  // `*` accepted br, its refusal unread: br was sent.
  t.equal(n.negotiate(`*, ${padded('br;q=0')}`), 'identity', 'nor is what comes before taken as the whole')
  t.equal(n.accepts(`*, ${padded('br;q=0')}`, 'br'), false, 'nor accepted')
  t.equal(n.accepts('*, br' + ';'.repeat(63) + ';q=0', 'br'), false, 'empty parameters count, a value kept as well')
  // br, q=0, *, q=0.5, gzip, then parameters: gzip's q=0 the 64th item, then the 65th.
  const refused = (params: number) => `br;q=0, *;q=0.5, gzip${';x'.repeat(params)};q=0`
  t.equal(n.negotiate(refused(58)), 'deflate', '64 items are read whole')
  t.equal(n.negotiate(refused(59)), 'identity', '65 are not')
  t.equal(n.upstream(refused(58)), available('zstd') ? 'deflate;q=0.5, zstd;q=0.5' : 'deflate;q=0.5', 'upstream: rewritten')
  t.equal(n.upstream(refused(59)), 'identity', 'upstream: plain asked for')
})

t.test('upstream: the codings accepted and decoded here; a refused identity stays refused', async t => {
  const cases: Array<[string, string]> = [
    ['gzip, br;q=0.5', 'gzip, br;q=0.5'],
    ['identity;q=0', 'identity;q=0'],
    ['*;q=0', 'identity;q=0'],
    ['*;q=0, gzip', 'gzip, identity;q=0'],
    ['*;q=0, identity', 'identity'],
    ['*;q=0, identity;q=0.2, gzip', 'gzip, identity;q=0.2'],
    ['*;q=0.5, gzip, zstd;q=0', 'gzip, br;q=0.5, deflate;q=0.5'],
    ['foo', 'identity'],
    ['foo, identity;q=0', 'identity;q=0']
  ]
  for (const [header, expected] of cases) {
    t.equal(n.upstream(header), expected, `${JSON.stringify(header)} → ${expected}`)
    t.equal(n.upstream(header), expected, 'again (cached)')
  }
})

t.test('a long header is read once for accepts then negotiate on one response', async t => {
  // Over 256 characters, under 64 elements.
  const long = `gzip;q=0.5, ${'x-some-coding, '.repeat(30)}`
  const tests = t.capture(RegExp.prototype, 'test', RegExp.prototype.test)
  const accepted = n.accepts(long, 'gzip')
  const read = tests.args().length
  const chosen = n.negotiate(long)
  // args() hands over the calls so far, and forgets them.
  const readAgain = tests.args().length
  tests.restore()
  t.same([accepted, chosen], [true, 'gzip'])
  t.ok(read > 0, 'read')
  t.equal(readAgain, 0, 'not read again')
})
