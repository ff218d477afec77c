import t from 'tap'
import type { GatewayRequest } from '../../../src/index.ts'
import { basicChallenge, bearerChallenge, keyChallenge, quoted } from './challenge.ts'
import { MISSING, fail } from './failure.ts'
import { compileLocation, compileLocations } from './location.ts'

const req = (headers: Record<string, string>, query = '') => ({ headers, query }) as unknown as GatewayRequest

t.test('header with a scheme: case-insensitive scheme, other schemes count as absent', async t => {
  const bearer = compileLocation({ header: 'Authorization', scheme: 'Bearer' })
  t.equal(bearer.read(req({ authorization: 'Bearer abc.def' })), 'abc.def')
  t.equal(bearer.read(req({ authorization: 'bearer   abc ' })), 'abc')
  t.equal(bearer.read(req({ authorization: 'Basic YTpi' })), undefined)
  t.equal(bearer.read(req({ authorization: 'Bearer ' })), undefined)
  t.equal(bearer.read(req({ authorization: 'Bearerabc' })), undefined)
  t.equal(bearer.read(req({ authorization: 'Bearer\tabc' })), 'abc', 'a tab after the scheme: the token, to verify (not no token)')
  t.equal(bearer.read(req({ authorization: 'BEARER \t abc' })), 'abc')
  t.equal(bearer.read(req({ authorization: 'Bearer\t' })), undefined)
  t.equal(bearer.read(req({ authorization: 'Bearer\u00a0abc' })), undefined, 'no other white space')
  t.equal(bearer.read(req({})), undefined)
  const key = compileLocation({ header: 'X-API-Key' })
  t.equal(key.read(req({ 'x-api-key': 'k1' })), 'k1')
  t.equal(key.read(req({ 'x-api-key': '' })), undefined)
  const r = req({ 'x-api-key': 'k1', other: 'o' })
  key.remove(r)
  t.same(r.headers, { 'x-api-key': undefined, other: 'o' })
})

t.test('a header with a scheme is removed only when it holds that scheme: another plugin may read it', async t => {
  const bearer = compileLocation({ header: 'authorization', scheme: 'Bearer' })
  const basic = req({ authorization: 'Basic YTpi' })
  bearer.remove(basic)
  t.same(basic.headers, { authorization: 'Basic YTpi' }, 'basic-auth\'s to keep or hide')
  const token = req({ authorization: 'bearer abc' })
  bearer.remove(token)
  t.same(token.headers, { authorization: undefined })
  const tab = req({ authorization: 'Bearer\tabc' })
  bearer.remove(tab)
  t.same(tab.headers, { authorization: undefined }, 'after a tab too')
})

t.test('cookie and query parameter', async t => {
  const cookie = compileLocation({ cookie: 'session' })
  t.equal(cookie.read(req({ cookie: 'a=1; session=tok.en; b=2' })), 'tok.en')
  t.equal(cookie.read(req({ cookie: 'mysession=x; session_id=y' })), undefined)
  t.equal(cookie.read(req({ cookie: 'session= ; other=1' })), undefined, 'an empty cookie is no credential')
  t.equal(cookie.read(req({ cookie: 'sessionX; other=1' })), undefined, 'a pair without = has no name')
  t.equal(cookie.read(req({ cookie: 'a=1; session="tok.en"; b=2' })), 'tok.en', 'a quoted value (RFC 6265): one pair of quotes removed')
  t.equal(cookie.read(req({ cookie: 'session=""' })), undefined, 'quotes around nothing: no credential')
  t.equal(cookie.read(req({ cookie: 'session="' })), '"', 'a lone quote is the value itself')
  const spaced = compileLocation({ query: 'access token' })
  const plus = req({}, '?access+token=x&a=1')
  spaced.remove(plus)
  t.equal(plus.query, '?a=1', 'a + in a name is a space')
  const query = compileLocation({ query: 'access_token' })
  t.equal(query.read(req({}, '?a=1&access_token=t%2B1&b')), 't+1')
  t.equal(query.read(req({}, '?access_token=')), undefined)
  const r = req({}, '?a=1&access_token=x&access%5Ftoken=y&b=2&access_tokens=z')
  query.remove(r)
  t.equal(r.query, '?a=1&b=2&access_tokens=z', 'every spelling of the parameter removed, others kept in order')
  const only = req({}, '?access_token=x')
  query.remove(only)
  t.equal(only.query, '')
  const malformed = req({}, '?%zz=1&access_token=x&a+b=2')
  query.remove(malformed)
  t.equal(malformed.query, '?%zz=1&a+b=2', 'a name that does not decode is kept')
  for (const q of ['', '?', '?a=1&&b', '?a=%41']) {
    const untouched = req({}, q)
    query.remove(untouched)
    t.equal(untouched.query, q, `a query without the parameter is left as sent: "${q}"`)
  }
})

t.test('a credential header may not be one the gateway sets for the upstream', async t => {
  for (const header of ['x-consumer-key', 'X-Consumer-Id', 'x_consumer_groups', 'x-anonymous-consumer']) {
    t.throws(() => compileLocation({ header }), /sets for the upstream/, header)
  }
  t.doesNotThrow(() => compileLocation({ header: 'x-consumers' }))
})

t.test('several locations: the first holding a credential wins; header names are redacted from logs', async t => {
  const redacted: string[] = []
  const any = compileLocations([{ header: 'authorization', scheme: 'Bearer' }, { query: 't' }, { header: 'X-Team-Key' }], { redactHeaders: (...names) => redacted.push(...names) })
  t.same(redacted, ['authorization', 'X-Team-Key'])
  t.equal(any.read(req({ authorization: 'Bearer h' }, '?t=q')), 'h')
  t.equal(any.read(req({ authorization: 'Basic x' }, '?t=q')), 'q')
  t.equal(any.read(req({ authorization: 'Basic x' }, '?u=q')), undefined)
  const r = req({ authorization: 'Bearer h', other: 'o' }, '?a=1&t=q')
  any.remove(r)
  t.same([r.headers, r.query], [{ authorization: undefined, other: 'o' }, '?a=1'], 'removed from every location')
})

t.test('challenges: quoted strings escaped; no error code without a token (RFC 6750 3.1)', async t => {
  t.equal(quoted('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"')
  const challenge = bearerChallenge('my "realm"')
  t.equal(challenge(undefined), 'Bearer realm="my \\"realm\\""')
  t.equal(challenge(fail(401, 'expired', 'invalid_token', 'the token has expired')),
    'Bearer realm="my \\"realm\\"", error="invalid_token", error_description="the token has expired"')
  t.equal(challenge(fail(403, 'insufficient_scope', 'insufficient_scope', 'needs more', 'a b')),
    'Bearer realm="my \\"realm\\"", error="insufficient_scope", error_description="needs more", scope="a b"')
  t.equal(challenge(MISSING), 'Bearer realm="my \\"realm\\""', 'no token: no error code')
  t.equal(challenge(fail(503, 'unavailable', 'unavailable', 'the key store is unreachable')), 'Bearer realm="my \\"realm\\""', 'the token was not judged')
  t.equal(basicChallenge('a "b"')(undefined), 'Basic realm="a \\"b\\"", charset="UTF-8"')
  t.equal(keyChallenge('a "b"')(MISSING), 'Key realm="a \\"b\\""')
})

t.test('challenges hold only what a header value can (Node refuses one past Latin-1: a 500), and error_description and scope what RFC 6750 3 allows: the rest as ?', async t => {
  t.equal(quoted('r\u00e9alm \u2603 "x"\ty'), '"r?alm ? \\"x\\"\ty"', 'one ? a character, beyond printable ASCII or tab')
  const challenge = bearerChallenge('portcullis')
  t.equal(challenge(fail(401, 'claim_mismatch', 'invalid_token', 'the token\'s \u7d44\u7e54 "q\\b" claim \ud83d\ude00\t\ud800')),
    'Bearer realm="portcullis", error="invalid_token", error_description="the token\'s ?? ?q?b? claim ???"', 'no " or \\, no tab, no lone surrogate either')
  t.equal(challenge(fail(403, 'insufficient_scope', 'insufficient_scope', 'needs more', 'read \u8aad')),
    'Bearer realm="portcullis", error="insufficient_scope", error_description="needs more", scope="read ?"')
  t.equal(basicChallenge('caf\u00e9')(undefined), 'Basic realm="caf?", charset="UTF-8"')
  t.equal(keyChallenge('\u2603')(MISSING), 'Key realm="?"')
})
