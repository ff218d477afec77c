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
  ['foo, bar;q=0.9', 'identity'],
  ['foo, gzip;q=0.1', 'gzip'],
  ['GZIP', 'gzip'],
  ['x-gzip', 'identity']
]

for (const [header, expected] of cases) {
  t.equal(n.negotiate(header), expected, `${JSON.stringify(header)} → ${expected}`)
  t.equal(n.negotiate(header), expected, `${JSON.stringify(header)} again (cached) → ${expected}`)
}
