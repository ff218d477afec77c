import t from 'tap'
import type { HeaderMap } from '../../src/index.ts'
import { addVary } from './vary.ts'

const varied = (vary: HeaderMap['vary'], name = 'origin') => {
  const headers: HeaderMap = vary === undefined ? {} : { vary }
  addVary(headers, name)
  return headers.vary
}

t.test('a name is added once, whatever the case it is already listed in; Vary: * is left alone', async t => {
  t.equal(varied(undefined), 'origin')
  t.equal(varied(''), 'origin', 'an empty Vary is replaced, not appended to')
  t.equal(varied('Accept-Encoding'), 'Accept-Encoding, origin')
  t.equal(varied('Accept-Encoding, Origin'), 'Accept-Encoding, Origin', 'already there, in another case')
  t.equal(varied('accept-encoding,origin'), 'accept-encoding,origin', 'already there, without spaces')
  t.equal(varied('*'), '*')
  t.equal(varied('Accept, *'), 'Accept, *')
  t.equal(varied('originator'), 'originator, origin', 'a longer name is another name')
  t.equal(varied(['Accept', 'Cookie']), 'Accept, Cookie, origin', 'several Vary lines become one')
  t.same(varied(['Accept', 'ORIGIN']), ['Accept', 'ORIGIN'])
})
