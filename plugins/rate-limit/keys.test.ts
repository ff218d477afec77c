import t from 'tap'
import { createHash } from 'node:crypto'
import type { GatewayRequest } from '../../src/index.ts'
import { addressKey } from '../shared/address-key.ts'
import { encodeValue, KeyBuilder, slotPart } from './keys.ts'

// The key builder alone, on plain requests: the exact keys, written out.

/** A header's value as keys hold it: its SHA-256, base64url, after #. */
const sha = (v: string) => '#' + createHash('sha256').update(v).digest('base64url')

const request = (over: Partial<Record<'consumer' | 'headers' | 'clientHeaders' | 'locals' | 'clientIp', unknown>> = {}) => ({
  clientIp: '10.0.0.1',
  consumer: { id: 'c1', groups: [], metadata: {} },
  headers: {},
  route: { name: 'r1', upstream: 'u' },
  clientHeaders: { 'x-tenant': 'acme', 'set-cookie': ['a=1', 'b=2'] },
  locals: { claims: { sub: 'u1', n: 7, admin: true, obj: { a: 1 }, ip: 'claimed' } },
  ...over
}) as unknown as GatewayRequest

t.test('each part reads its own value; a header name in any case; a claim by the name after claim:', async t => {
  const parts = ['route', 'claim:sub', 'ip', 'header:X-Tenant', 'claim:n', 'header:set-cookie', 'consumer', 'claim:admin']
  const keys = new KeyBuilder([parts])
  t.equal(keys.key(request(), 0, 'l:s1000'),
    `rl:{consumer=c1}:l:s1000:claim:admin=true|claim:n=7|claim:sub=u1|header:set-cookie=${sha('a=1, b=2')}|header:x-tenant=${sha('acme')}|ip=10.0.0.1|route=r1`,
    'the first part in the tag, the others after the id: consumer, claims, headers (lower-case), ip, route')
})

t.test('a part the request lacks is the client IP, after the part\'s label and #ip=', async t => {
  const keys = new KeyBuilder([['consumer', 'header:x-missing', 'claim:obj', 'claim:none', 'route']])
  t.equal(keys.key(request({ consumer: undefined }), 0, 'a:s1000'),
    'rl:{consumer=#ip=10.0.0.1}:a:s1000:claim:none=#ip=10.0.0.1|claim:obj=#ip=10.0.0.1|header:x-missing=#ip=10.0.0.1|route=r1')
  // No claims at all.
  t.equal(new KeyBuilder([['claim:sub']]).key(request({ locals: {} }), 0, 'a:s1000'), 'rl:{claim:sub=#ip=10.0.0.1}:a:s1000')
})

t.test('an empty header (or a list of empty items) or claim is missing: the client IP stands in, not one value every such client shares', async t => {
  const keys = new KeyBuilder([['header:x-device']])
  for (const v of ['', ', ', ',']) t.equal(keys.key(request({ clientHeaders: { 'x-device': v } }), 0, 'a:s1000'), 'rl:{header:x-device=#ip=10.0.0.1}:a:s1000', JSON.stringify(v))
  t.equal(keys.keysFor([{ index: 0, id: 'a:s1000' }])(request({ clientIp: '10.0.0.2', clientHeaders: { 'x-device': '' } }))[0], 'rl:{header:x-device=#ip=10.0.0.2}:a:s1000', 'remembered by the client IP')
  t.equal(keys.key(request({ clientHeaders: { 'x-device': ' x ' } }), 0, 'a:s1000'), `rl:{header:x-device=${sha(' x ')}}:a:s1000`, 'a value with more than spaces is one')
  t.equal(new KeyBuilder([['claim:sub']]).key(request({ locals: { claims: { sub: '' } } }), 0, 'a:s1000'), 'rl:{claim:sub=#ip=10.0.0.1}:a:s1000')
  t.equal(new KeyBuilder([['claim:n']]).key(request({ locals: { claims: { n: 0 } } }), 0, 'a:s1000'), 'rl:{claim:n=0}:a:s1000', '0 is a value')
})

t.test('the client IP standing in for a consumer is not a limit by ip: same name, another counter', async t => {
  const keys = new KeyBuilder([['consumer'], ['ip']])
  const anonymous = request({ consumer: undefined })
  t.not(keys.keysFor([{ index: 0, id: 'default:s3600000' }])(anonymous)[0], keys.keysFor([{ index: 1, id: 'default:s3600000' }])(anonymous)[0])
  t.not(keys.key(anonymous, 0, 'n:s1000'), new KeyBuilder([['header:x-missing']]).key(anonymous, 0, 'n:s1000'), 'nor another missing part')
})

t.test('a limit\'s key depends on its own parts only: not on the other limits of the route, nor on the order of its parts', async t => {
  const req = request()
  const alone = new KeyBuilder([['consumer']]).key(req, 0, 'daily:s3600000')
  t.equal(alone, 'rl:{consumer=c1}:daily:s3600000')
  t.equal(new KeyBuilder([['consumer'], ['ip']]).key(req, 0, 'daily:s3600000'), alone, 'beside a limit per IP (no part in common)')
  t.equal(new KeyBuilder([['route'], ['consumer', 'ip'], ['consumer']]).key(req, 2, 'daily:s3600000'), alone, 'beside others, at another index')
  const twoParts = new KeyBuilder([['ip', 'header:X-Tenant']]).key(req, 0, 'a:s1000')
  t.equal(twoParts, `rl:{header:x-tenant=${sha('acme')}}:a:s1000:ip=10.0.0.1`)
  t.equal(new KeyBuilder([['consumer'], ['header:x-tenant', 'ip']]).key(req, 1, 'a:s1000'), twoParts, 'the same parts in another order, another case')
})

t.test('slotPart: the part whose value is the hash tag, from the limit\'s own parts', async t => {
  t.equal(slotPart(['consumer']), 'consumer=')
  t.equal(slotPart(['route', 'ip', 'consumer']), 'consumer=')
  t.equal(slotPart(['ip', 'header:X-A']), 'header:x-a=')
  t.equal(slotPart(['route', 'ip']), 'ip=')
  t.equal(slotPart(['header:b', 'claim:z', 'header:a']), 'claim:z=')
})

t.test('values: separators, braces and percent signs escaped; longer than 64 characters hashed', async t => {
  t.equal(encodeValue('plain value'), 'plain value')
  t.equal(encodeValue('a|b{c}d%e'), 'a%7cb%7bc%7dd%25e')
  t.equal(encodeValue('%|{}#'), '%25%7c%7b%7d%23', 'only special characters')
  t.equal(encodeValue(sha('a'.repeat(65))), '%23Y1NhxIu56rFBmOduqKt_GkFoXWrWKqkUbTAdTxfrCuA', 'a value in clear never looks like a hashed one')
  t.equal(encodeValue('a'.repeat(64)), 'a'.repeat(64), '64 characters are kept')
  // SHA-256 of 65 "a", base64url.
  t.equal(encodeValue('a'.repeat(65)), '#Y1NhxIu56rFBmOduqKt_GkFoXWrWKqkUbTAdTxfrCuA')
  const keys = new KeyBuilder([['header:x-tenant', 'ip']])
  t.equal(keys.key(request({ clientHeaders: { 'x-tenant': 'a}|consumer=c2' } }), 0, 'a:s1000'), `rl:{header:x-tenant=${sha('a}|consumer=c2')}}:a:s1000:ip=10.0.0.1`, 'a value cannot close the tag or pose as a second part')
  t.equal(new KeyBuilder([['claim:org']]).key(request({ locals: { claims: { org: 'a}|ip=x' } } }), 0, 'a:s1000'), 'rl:{claim:org=a%7d%7cip=x}:a:s1000', 'nor a claim\'s')
  t.equal(new KeyBuilder([['claim:{org}|x']]).key(request({ locals: { claims: { '{org}|x': 'o1' } } }), 0, 'a:s1000'), 'rl:{claim:%7borg%7d%7cx=o1}:a:s1000', 'nor a part\'s name')
})

t.test('a header\'s value is never kept in clear, however short: it is often a credential', async t => {
  const keys = new KeyBuilder([['header:X-Api-Key'], ['header:x-api-key', 'route']])
  const req = request({ clientHeaders: { 'x-api-key': 'sk_live_SECRET123' } })
  t.same([keys.key(req, 0, 'a:f3600000'), keys.key(req, 1, 'b:s1000')],
    [`rl:{header:x-api-key=${sha('sk_live_SECRET123')}}:a:f3600000`, `rl:{header:x-api-key=${sha('sk_live_SECRET123')}}:b:s1000:route=r1`])
  t.same(keys.keysFor([{ index: 0, id: 'a:f3600000' }])(req), [`rl:{header:x-api-key=${sha('sk_live_SECRET123')}}:a:f3600000`], 'remembered keys too')
  t.equal(keys.key(request({ clientHeaders: {} }), 0, 'a:f3600000'), 'rl:{header:x-api-key=#ip=10.0.0.1}:a:f3600000', 'the client IP standing in is as it is')
})

t.test('keysFor: keys hanging on one part are remembered by its value, or by the client IP standing in for it', async t => {
  const keys = new KeyBuilder([['consumer'], ['consumer']])
  const of = keys.keysFor([{ index: 0, id: 'a:s1000' }, { index: 1, id: 'b:f60000' }])
  const c1 = of(request())
  t.same(c1, ['rl:{consumer=c1}:a:s1000', 'rl:{consumer=c1}:b:f60000'])
  t.equal(of(request()), c1, 'the same consumer again: the same keys, reused')
  t.same(of(request({ consumer: { id: 'c2', groups: [], metadata: {} } })), ['rl:{consumer=c2}:a:s1000', 'rl:{consumer=c2}:b:f60000'])
  // A consumer whose id is an address, and a request without a consumer from that address: two counters.
  const named = of(request({ consumer: { id: '10.0.0.1', groups: [], metadata: {} } }))
  const anonymous = of(request({ consumer: undefined }))
  t.same([named[0], anonymous[0]], ['rl:{consumer=10.0.0.1}:a:s1000', 'rl:{consumer=#ip=10.0.0.1}:a:s1000'])
  const c2 = of(request({ consumer: { id: 'c2', groups: [], metadata: {} } }))
  t.ok(of(request()) === c1 && of(request({ consumer: { id: 'c2', groups: [], metadata: {} } })) === c2, 'clients taking turns keep theirs')
})

t.test('the anonymous consumer (x-anonymous-consumer: true from its auth plugin) is no consumer: the client IP stands in', async t => {
  const guest = { id: 'guest', groups: [], metadata: {} }
  const anonymous = (clientIp: string) => request({ consumer: guest, headers: { 'x-anonymous-consumer': 'true' }, clientIp })
  const keys = new KeyBuilder([['consumer'], ['consumer', 'route']])
  t.equal(keys.key(anonymous('10.0.0.1'), 1, 'a:s1000'), 'rl:{consumer=#ip=10.0.0.1}:a:s1000:route=r1')
  const of = keys.keysFor([{ index: 0, id: 'a:s1000' }])
  t.same([of(anonymous('10.0.0.1'))[0], of(anonymous('10.0.0.2'))[0]], ['rl:{consumer=#ip=10.0.0.1}:a:s1000', 'rl:{consumer=#ip=10.0.0.2}:a:s1000'], 'one counter per address')
  t.equal(of(anonymous('10.0.0.1')), of(anonymous('10.0.0.1')), 'remembered by the address')
  t.equal(of(request({ consumer: guest }))[0], 'rl:{consumer=guest}:a:s1000', 'the same consumer identified by its credentials: counted by its id')
})

t.test('keysFor: at most 1,024 values remembered, then the memo starts again', async t => {
  const of = new KeyBuilder([['consumer']]).keysFor([{ index: 0, id: 'a:s1000' }])
  const consumer = (id: string) => request({ consumer: { id, groups: [], metadata: {} } })
  const first = of(request())
  const wrong = Array.from({ length: 1023 }, (_, i) => of(consumer(`k${i}`))[0]).filter((k, i) => k !== `rl:{consumer=k${i}}:a:s1000`)
  t.same(wrong, [], '1,023 other consumers, each its own keys')
  t.equal(of(request()), first, 'still remembered among 1,024 values')
  t.equal(of(consumer('one-more'))[0], 'rl:{consumer=one-more}:a:s1000')
  const again = of(request())
  t.not(again, first, 'the 1,025th value started the memo again')
  t.same(again, first, 'with the same keys')
})

t.test('keysFor: keys on several parts are built for each request', async t => {
  const keys = new KeyBuilder([['consumer', 'ip'], ['consumer']])
  const of = keys.keysFor([{ index: 0, id: 'a:s1000' }, { index: 1, id: 'b:s1000' }])
  const first = of(request())
  t.same(first, ['rl:{consumer=c1}:a:s1000:ip=10.0.0.1', 'rl:{consumer=c1}:b:s1000'])
  t.same(of(request({ clientIp: '10.0.0.2' })), ['rl:{consumer=c1}:a:s1000:ip=10.0.0.2', 'rl:{consumer=c1}:b:s1000'], 'the same consumer from another address: another key')
  // A consumer's plan without the limit on two parts: one part left, remembered.
  const own = keys.keysFor([{ index: 1, id: 'b:s1000' }])
  t.equal(own(request()), own(request()))
})

t.test('keysFor: only values the keys show in clear are remembered (not a header\'s, nor one over 64 characters)', async t => {
  const keys = new KeyBuilder([['header:x-k'], ['claim:sub']])
  const byHeader = keys.keysFor([{ index: 0, id: 'a:s1000' }])
  const withKey = request({ clientHeaders: { 'x-k': 'sk_live_SECRET123' } })
  const first = byHeader(withKey)
  t.same(first, [`rl:{header:x-k=${sha('sk_live_SECRET123')}}:a:s1000`])
  t.not(byHeader(withKey), first, 'a header\'s value is hashed again, not held')
  const missing = byHeader(request({ clientHeaders: {} }))
  t.equal(byHeader(request({ clientHeaders: {} })), missing, 'the client IP standing in for it is remembered')
  const byClaim = keys.keysFor([{ index: 1, id: 'b:s1000' }])
  const claim = (sub: string) => request({ locals: { claims: { sub } } })
  t.equal(byClaim(claim('u'.repeat(64))), byClaim(claim('u'.repeat(64))), '64 characters: in clear in the key, remembered')
  const long = byClaim(claim('u'.repeat(65)))
  t.same(long, [`rl:{claim:sub=${sha('u'.repeat(65))}}:b:s1000`])
  t.not(byClaim(claim('u'.repeat(65))), long, 'longer: hashed each time, not held')
})

t.test('ip: IPv4-mapped addresses as IPv4; IPv6 by its /64 network (ipv6Prefix), or the address at 128', async t => {
  t.equal(addressKey('10.0.0.1', 64), '10.0.0.1')
  t.equal(addressKey('::ffff:10.0.0.1', 64), '10.0.0.1')
  t.equal(addressKey('::FFFF:10.0.0.1', 128), '10.0.0.1')
  t.equal(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:0DB8:0001:0002:0:0:0:1', 64), '2001:db8:1:2::/64', 'any spelling of the network')
  t.equal(addressKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200::/56')
  t.equal(addressKey('2001:db8:0:0:1:0:0:1', 128), '2001:db8::1:0:0:1', 'RFC 5952: the first longest run of zeros')
  t.equal(addressKey('::1', 128), '::1')
  t.equal(addressKey('::1', 64), '::/64')
  t.equal(addressKey('fe80::1%eth0', 64), 'fe80::/64', 'a zone is left out')
  t.equal(addressKey('not:an:address', 64), 'not:an:address', 'text that is no address: as it is')
  const keys = new KeyBuilder([['ip'], ['consumer']], 64)
  const of = keys.keysFor([{ index: 0, id: 'a:s1000' }])
  t.same([of(request({ clientIp: '2001:db8:1:2::7' }))[0], of(request({ clientIp: '2001:db8:1:2::8' }))[0]], ['rl:{ip=2001:db8:1:2::/64}:a:s1000', 'rl:{ip=2001:db8:1:2::/64}:a:s1000'])
  t.equal(keys.key(request({ consumer: undefined, clientIp: '::ffff:10.0.0.9' }), 1, 'b:s1000'), 'rl:{consumer=#ip=10.0.0.9}:b:s1000', 'the client IP standing in too')
  t.equal(new KeyBuilder([['ip']], 128).key(request({ clientIp: '2001:db8:1:2::7' }), 0, 'a:s1000'), 'rl:{ip=2001:db8:1:2::7}:a:s1000')
})

t.test('every header is keyed as auth plugins read a credential: the scheme in any case, any spaces or tabs after it, the credentials trimmed', async t => {
  for (const header of ['authorization', 'x-token']) {
    const keys = new KeyBuilder([[`header:${header}`]])
    const key = (v: string) => keys.key(request({ clientHeaders: { [header]: v } }), 0, 'a:s1000')
    const one = key('Bearer T0k3n')
    t.equal(one, `rl:{header:${header}=${sha('bearer T0k3n')}}:a:s1000`)
    for (const v of ['bearer T0k3n', 'BEARER T0k3n', 'Bearer  T0k3n', 'Bearer\tT0k3n', 'Bearer T0k3n \t', `Bearer${' '.repeat(60)}T0k3n`]) t.equal(key(v), one, `${header}: ${JSON.stringify(v)}`)
    t.not(key('Bearer T0K3N'), one, 'the credentials as sent: a token is case-sensitive')
    t.not(key('Basic T0k3n'), one, 'another scheme')
    t.not(key('Bearer,T0k3n'), one, 'no white space after the scheme: as sent')
    t.equal(key('T0k3n'), `rl:{header:${header}=${sha('T0k3n')}}:a:s1000`, 'one word: as sent')
  }
  // A lazy `(.*?)[ \t]*$` took seconds on runs of spaces inside the value (quadratic): 64 kB, some 13 s.
  const keys = new KeyBuilder([['header:x-token']])
  const started = performance.now()
  keys.key(request({ clientHeaders: { 'x-token': `Bearer a${' '.repeat(65_536)}b` } }), 0, 'a:s1000')
  t.ok(performance.now() - started < 1_000, 'a run of spaces inside the credentials: linear time')
  t.equal(new KeyBuilder([['header:proxy-authorization']]).key(request({ clientHeaders: { 'proxy-authorization': 'basic  YTpi' } }), 0, 'a:s1000'),
    `rl:{header:proxy-authorization=${sha('basic YTpi')}}:a:s1000`)
})
