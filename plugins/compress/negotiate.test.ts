import t from 'tap'
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
  ['br, x-gzip;q=0.5', 'br']
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
    ['br', 'gzip', false], ['identity', 'gzip', false], ['GZIP;Q=0.5', 'gzip', true]
  ]
  for (const [header, coding, expected] of cases) {
    t.equal(brOnly.accepts(header, coding), expected, `${JSON.stringify(header)} takes ${coding}: ${expected}`)
    t.equal(brOnly.accepts(header, coding), expected, 'again (cached)')
  }
})
