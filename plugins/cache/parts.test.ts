import t from 'tap'
import type { HeaderMap } from '../../src/index.ts'
import { parseCacheControl, requestDirectives, seconds, withheldFields } from './cache-control.ts'
import { compileKey, urlKeyPrefix } from './cache-key.ts'
import { addCacheStatus } from './cache-status.ts'
import { Collapser, LEFT } from './collapse.ts'
import { notModified, notModifiedHeaders, setValidators, updatedHeaders } from './conditional.ts'
import { currentAge, decode, encodeEntry, encodeMarker, freshness, hasValidator, isMarker, type Entry } from './entry.ts'
import { hitReply } from './hit-reply.ts'
import { ownFields, unstorableReason, withhold } from './storable.ts'
import { policyHeaders } from './targeted.ts'
import { variantKey, varyNames } from './vary.ts'
import { evaluate, staleIfErrorAllows } from './verdict.ts'

const RULES = { heuristicMax: 3600, defaultTtl: 0, staleIfError: 0, staleWhileRevalidate: 0 }
const NOW = Date.parse('2026-01-01T12:00:00Z')

t.test('Cache-Control parsing', async t => {
  t.same(parseCacheControl('Max-Age=60, no-cache="set-cookie, x-a", public'), { 'max-age': '60', 'no-cache': 'set-cookie, x-a', public: true })
  t.same(parseCacheControl(['max-age=1', 's-maxage="5"']), { 'max-age': '1', 's-maxage': '5' })
  t.same(parseCacheControl(['max-age=60', 'max-age=0, s-maxage=5, s-maxage=9']), { 'max-age': '60', 's-maxage': '5' }, 'repeated: the first counts (RFC 9111 4.2.1)')
  t.equal(seconds(parseCacheControl('max-stale'), 'max-stale'), Infinity)
  t.equal(seconds(parseCacheControl('max-age=abc'), 'max-age'), undefined)
  t.same(requestDirectives({ pragma: 'no-cache' }), { 'no-cache': true })
  t.same(requestDirectives({ pragma: 'no-cache', 'cache-control': 'max-age=5' }), { 'max-age': '5' }, 'Pragma only counts without Cache-Control')
})

t.test('delta-seconds: too large to represent counts as 2^31 (RFC 9111 1.2.2); negative or not a number is absent', async t => {
  const huge = '9'.repeat(400)
  t.equal(seconds(parseCacheControl(`max-age=${huge}`), 'max-age'), 2147483648)
  t.equal(seconds(parseCacheControl('max-age=99999999999'), 'max-age'), 2147483648)
  t.equal(seconds(parseCacheControl('max-age=2147483647'), 'max-age'), 2147483647)
  t.equal(seconds(parseCacheControl('max-age=0'), 'max-age'), 0)
  t.equal(seconds(parseCacheControl('max-age=-1'), 'max-age'), undefined)
  t.equal(seconds(parseCacheControl('s-maxage'), 's-maxage'), undefined, 'a bare directive that needs a value')
  t.equal(seconds(parseCacheControl('max-stale=7'), 'max-stale'), 7)
  const date = new Date(NOW).toUTCString()
  t.equal(freshness(200, { date, 'cache-control': `max-age=${huge}` }, NOW, RULES).lifetime, 2147483648)
  t.equal(freshness(200, { date, 'cache-control': 'max-age=60', age: huge }, NOW, RULES).initialAge, 2147483648)
  t.equal(freshness(200, { date, 'cache-control': 'max-age=60', age: '-5' }, NOW, RULES).initialAge, 0)
})

t.test('freshness: s-maxage > max-age > Expires > heuristic (capped) > defaultTtl', async t => {
  const date = new Date(NOW).toUTCString()
  const f = (headers: Record<string, string>, status = 200, rules = RULES) => freshness(status, { date, ...headers }, NOW, rules)
  t.equal(f({ 'cache-control': 's-maxage=30, max-age=10' }).lifetime, 30)
  t.equal(f({ 'cache-control': 's-maxage=30' }).mustRevalidate, true, 's-maxage implies proxy-revalidate')
  t.equal(f({ 'cache-control': 'max-age=10', expires: new Date(NOW + 99_000).toUTCString() }).lifetime, 10)
  t.equal(f({ expires: new Date(NOW + 99_000).toUTCString() }).lifetime, 99)
  t.equal(f({ expires: '0' }).lifetime, 0)
  t.equal(f({ 'last-modified': new Date(NOW - 1000_000).toUTCString() }).lifetime, 100)
  t.equal(f({ 'last-modified': new Date(NOW - 1e9).toUTCString() }).lifetime, 3600)
  t.equal(f({ 'last-modified': new Date(NOW - 1000_000).toUTCString() }, 302).lifetime, 0, 'no heuristic for a status not cacheable by default')
  t.equal(f({}).lifetime, 0)
  t.equal(f({}, 200, { ...RULES, defaultTtl: 42 }).lifetime, 42)
  t.equal(f({ 'cache-control': 'no-cache, max-age=60' }).lifetime, 0)
  t.equal(f({ 'cache-control': 'max-age=60', age: '20' }).initialAge, 20)
  t.equal(freshness(200, { date: new Date(NOW - 30_000).toUTCString() }, NOW, RULES).initialAge, 30, 'apparent age from Date')
  t.same(f({ 'cache-control': 'max-age=1, stale-while-revalidate=5, stale-if-error=9' }), { initialAge: 0, lifetime: 1, swr: 5, sie: 9, mustRevalidate: false })
  const windows = { ...RULES, staleIfError: 600, staleWhileRevalidate: 30 }
  t.same(f({ 'cache-control': 'max-age=1' }, 200, windows), { initialAge: 0, lifetime: 1, swr: 0, sie: 0, mustRevalidate: false }, 'the route\'s windows are not stored in the entry')
})

t.test('the route\'s stale windows apply when served, from the route\'s current config; never past must-revalidate', async t => {
  const date = new Date(NOW).toUTCString()
  const windows = { staleIfError: 600, staleWhileRevalidate: 30 }
  // Stored at NOW, fresh for 1 s; asked 20 s past its freshness.
  const stored = (cc: string): Entry => ({ status: 200, headers: {}, responseTime: NOW, ...freshness(200, { date, 'cache-control': cc }, NOW, RULES), variant: '', keyed: '', tags: [], body: Buffer.alloc(0) })
  const at = NOW + 21_000
  t.equal(evaluate(stored('max-age=1'), {}, at, windows), 'swr', 'the route\'s stale-while-revalidate')
  t.ok(staleIfErrorAllows(stored('max-age=1'), 21, {}, windows), 'the route\'s stale-if-error')
  t.equal(evaluate(stored('max-age=1'), {}, at, RULES), 'stale', 'the route\'s windows gone from its config: gone for the entries stored with them')
  t.notOk(staleIfErrorAllows(stored('max-age=1'), 21, {}, RULES))
  t.equal(evaluate(stored('max-age=1, stale-while-revalidate=10'), {}, at, windows), 'swr', 'the larger of the route\'s and the upstream\'s')
  t.equal(evaluate(stored('max-age=1, stale-while-revalidate=90'), {}, at, RULES), 'swr', 'the upstream\'s own, as stored')
  t.ok(staleIfErrorAllows(stored('max-age=1, stale-if-error=90'), 21, {}, RULES))
  for (const cc of ['max-age=1, must-revalidate', 'max-age=1, proxy-revalidate', 's-maxage=1', 'no-cache']) {
    t.equal(evaluate(stored(cc), {}, at, windows), 'stale', `${cc}: none of the route's`)
    t.notOk(staleIfErrorAllows(stored(cc), 21, {}, windows), `${cc}: none of the route's`)
  }
})

t.test('Vary names and normalized variant keys', async t => {
  t.same(varyNames('Accept-Encoding, accept-language,Accept-Encoding'), ['accept-encoding', 'accept-language'])
  t.same(varyNames('accept, *'), ['*'])
  t.equal(variantKey(['accept-language', 'x-v'], { 'accept-language': 'EN , Fr', 'x-v': 'A' }), '|h:accept-language=en,fr|h:x-v=A')
})

t.test('cache keys: sorted query, include and ignore lists, headers, host', async t => {
  const key = compileKey('r', { query: { ignore: ['utm'] }, headers: ['X-Tenant'] })
  t.same(key('/p', '?b=2&utm=1&a=1', 'Api.Example.com:443', { 'x-tenant': 't1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' }),
    { primary: 'c:r:/p?a=1&b=2#api.example.com|https|x-tenant=t1|', urlTag: 'u:api.example.com/p' })
  t.equal(compileKey('r', { host: false, query: { include: ['id'] } })('/p', '?x=1&id=2', 'a', {}).primary, 'c:r:/p?id=2#||')
})

t.test('conditionals and 304 header updates', async t => {
  t.ok(notModified({ 'if-none-match': 'W/"a", "b"' }, { etag: '"a"' }), 'weak comparison')
  t.notOk(notModified({ 'if-none-match': '"c"' }, { etag: '"a"', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' }))
  t.ok(notModified({ 'if-modified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' }, { 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' }))
  t.ok(notModified({ 'if-none-match': '*' }, {}))
  t.same(updatedHeaders({ 'content-length': '5', 'cache-control': 'max-age=1', etag: '"a"' }, { 'content-length': '0', 'cache-control': 'max-age=9', 'x-new': '1' }),
    { 'content-length': '5', 'cache-control': 'max-age=9', etag: '"a"', 'x-new': '1' })
})

t.test('hit replies: built once per entry for a given Age and ttl, new ones when either changes', async t => {
  const body = Buffer.from('hello')
  const e: Entry = { status: 200, headers: { 'content-type': 'text/plain', etag: '"a"' }, responseTime: NOW, initialAge: 0, lifetime: 60, swr: 0, sie: 0, mustRevalidate: false, variant: '', keyed: '', tags: [], body }
  const first = hitReply(e, 'Edge', 10.2, 'GET')
  t.same(first, { status: 200, headers: { 'content-type': 'text/plain', etag: '"a"', age: '10', 'content-length': '5', 'cache-status': 'Edge; hit; ttl=50' }, body })
  t.equal(hitReply(e, 'Edge', 10.4, 'GET'), first, 'the same reply within the second')
  t.same(hitReply(e, 'Edge', 10.4, 'HEAD'), { status: 200, headers: first.headers }, 'HEAD: the same headers, no body')
  const later = hitReply(e, 'Edge', 11.1, 'GET')
  t.not(later, first)
  t.same(later.headers, { 'content-type': 'text/plain', etag: '"a"', age: '11', 'content-length': '5', 'cache-status': 'Edge; hit; ttl=49' })
  t.same(first.headers?.age, '10', 'a reply already sent is left as it was')
  t.same(e.headers, { 'content-type': 'text/plain', etag: '"a"' }, 'the entry is not changed')
  t.equal(hitReply(e, 'Edge', 60.3, 'GET').headers?.['cache-status'], 'Edge; hit; ttl=-1', 'just stale: a negative ttl, not 0')
})

t.test('Cache-Control parsing: empty names, spaces, quotes only around the whole value, no header', async t => {
  t.same(parseCacheControl(undefined), {})
  t.same([parseCacheControl(''), parseCacheControl(',,')], [{}, {}], 'nothing but commas')
  t.same(parseCacheControl(' , =5, No-Store ,MAX-AGE = 7 '), { 'no-store': true, 'max-age': '7' })
  t.same(parseCacheControl('a="x"y, b=x"y"'), { a: '"x"y', b: 'x"y"' }, 'quotes are stripped only when they enclose the value')
  t.same(parseCacheControl('private="x"'), { private: 'x' })
  t.same(requestDirectives({}), {})
  t.same(requestDirectives({ pragma: 'foo' }), {})
  t.same(requestDirectives({ pragma: ['x', 'NO-CACHE'] }), { 'no-cache': true }, 'Pragma lines, any case')
})

t.test('freshness: boundaries and sources', async t => {
  const at = (ms: number) => new Date(ms).toUTCString()
  const f = (headers: Record<string, string>, status = 200, now = NOW) => freshness(status, headers, now, RULES)
  t.equal(f({ date: at(NOW - 1000) }).initialAge, 0, 'a Date 1 s old is noise')
  t.equal(f({ date: at(NOW - 2000) }).initialAge, 2, 'from 2 s it is age')
  t.equal(f({}).initialAge, 0, 'no Date')
  t.equal(f({ date: at(NOW - 30_000), age: '10' }).initialAge, 30, 'the larger of Age and the apparent age')
  t.equal(f({ date: at(NOW - 30_000), age: '50' }).initialAge, 50)
  t.equal(f({ age: '50, 70' }).initialAge, 50, 'Age given twice: the first')
  const delayed = (headers: Record<string, string>) => freshness(200, headers, NOW, RULES, NOW - 3000).initialAge
  t.equal(delayed({ age: '10' }), 13, 'the response delay adds to Age (corrected_age_value)')
  t.equal(delayed({}), 3, 'and counts without Age')
  t.equal(delayed({ date: at(NOW - 30_000), age: '10' }), 30, 'the apparent age when larger')
  t.equal(f({ age: '1.5e3' }).initialAge, 0, 'an Age that is not delta-seconds is ignored')
  // Invalid explicit freshness means stale, not the heuristic (RFC 9111 4.2.1).
  for (const cc of ['max-age=abc', 'max-age=-1', 'max-age=1.5', 'max-age=+60', 'max-age', 's-maxage=x, max-age=60']) {
    t.equal(f({ date: at(NOW), 'cache-control': cc, 'last-modified': at(NOW - 1000_000) }).lifetime, 0, `${cc}: stale`)
  }
  // Expires counts from Date when there is one, else from when the response came.
  t.equal(f({ date: at(NOW - 20_000), expires: at(NOW + 40_000) }).lifetime, 60)
  t.equal(f({ expires: at(NOW + 40_000) }).lifetime, 40)
  t.equal(f({ date: at(NOW), expires: at(NOW - 40_000) }).lifetime, 0, 'Expires in the past')
  t.equal(f({ date: at(NOW), 'last-modified': at(NOW + 100_000) }).lifetime, 0, 'Last-Modified in the future')
  t.equal(f({ 'last-modified': at(NOW - 1000_000) }).lifetime, 100, 'the heuristic counts from the response time without Date')
  for (const status of [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]) {
    t.equal(f({ date: at(NOW), 'last-modified': at(NOW - 1000_000) }, status).lifetime, 100, `${status} is cacheable by default`)
  }
  for (const status of [201, 302, 307, 400, 500, 503]) {
    t.equal(f({ date: at(NOW), 'last-modified': at(NOW - 1000_000) }, status).lifetime, 0, `${status} is not`)
  }
  t.equal(f({ date: at(NOW), 'cache-control': 'public', 'last-modified': at(NOW - 1000_000) }, 302).lifetime, 100, 'public allows the heuristic for any status')
  t.equal(f({ date: at(NOW), 'cache-control': 'max-age=5' }, 302).lifetime, 5)
  const flags = (cc: string) => f({ 'cache-control': cc }).mustRevalidate
  t.same([flags('max-age=5'), flags('must-revalidate'), flags('proxy-revalidate'), flags('s-maxage=5'), flags('no-cache')], [false, true, true, true, true])
  t.same([f({ pragma: 'no-cache', expires: at(NOW + 60_000) }).lifetime, f({ pragma: 'No-Cache' }).mustRevalidate], [0, true], 'Pragma: no-cache without Cache-Control')
  t.same([f({ pragma: 'no-cache', 'cache-control': 'max-age=60' }).lifetime, f({ pragma: 'no-cache', 'cache-control': 'max-age=60' }).mustRevalidate], [60, false], 'Pragma ignored with Cache-Control')
  t.same(f({ 'cache-control': 'max-age=1' }), { initialAge: 0, lifetime: 1, swr: 0, sie: 0, mustRevalidate: false }, 'no stale windows by default')
})

t.test('entries: age, validators, encoding', async t => {
  const e: Entry = { status: 203, headers: { etag: '"a"', 'x-list': ['1', '2'] }, responseTime: NOW, initialAge: 5, lifetime: 60, swr: 1, sie: 2, mustRevalidate: true, variant: '|h:a=b', keyed: 'k1', tags: ['u:x/', 's:k'], body: Buffer.from('bytes') }
  t.equal(currentAge(e, NOW + 2500), 7.5)
  t.equal(currentAge(e, NOW - 2500), 5, 'a clock going back adds nothing')
  t.same([hasValidator({ etag: '"a"' }), hasValidator({ 'last-modified': 'x' }), hasValidator({ date: 'x' })], [true, true, false])
  const copy = decode(Buffer.from(encodeEntry(e)))
  t.same(copy, e)
  t.equal(isMarker(copy as Entry), false)
  const marker = decode(Buffer.from(encodeMarker({ vary: ['accept'] })))
  t.same(marker, { vary: ['accept'] })
  t.equal(isMarker(marker as Entry), true)
  t.throws(() => decode(Buffer.from('nonsense')), 'not ours: thrown (the cache counts it, a miss)')
  const stored = encodeEntry(e)
  t.equal(decode(stored), decode(stored), 'the same Buffer decodes to the same object')
})

t.test('cache status members', async t => {
  const h: HeaderMap = {}
  addCacheStatus(h, 'A', { hit: false, stored: false, collapsed: false })
  t.equal(h['cache-status'], 'A')
  addCacheStatus(h, 'B', { hit: true, fwd: 'stale', fwdStatus: 304, stored: true, collapsed: true, ttl: -2.6, detail: 'x' })
  t.equal(h['cache-status'], 'A, B; hit; fwd=stale; fwd-status=304; stored; collapsed; ttl=-3; detail=x')
  const up: HeaderMap = { 'cache-status': 'Upstream; hit' }
  addCacheStatus(up, 'P', { ttl: 0.4 })
  t.equal(up['cache-status'], 'Upstream; hit, P; ttl=0')
  const stale = (ttl: number) => { const s: HeaderMap = {}; addCacheStatus(s, 'P', { ttl }); return s['cache-status'] }
  t.same([stale(0), stale(-0.3), stale(-0.5), stale(-1), stale(-2.4), stale(59.6)], ['P; ttl=-1', 'P; ttl=-1', 'P; ttl=-1', 'P; ttl=-1', 'P; ttl=-2', 'P; ttl=60'], 'stale (no time left): never rounded up to a fresh-looking 0')
})

t.test('conditionals: If-None-Match before If-Modified-Since, dates, validators sent upstream, 304 headers', async t => {
  const lm = 'Mon, 01 Jan 2024 00:00:00 GMT'
  t.notOk(notModified({ 'if-none-match': '"x"', 'if-modified-since': lm }, { etag: '"a"', 'last-modified': lm }), 'If-Modified-Since is ignored when If-None-Match is sent')
  t.notOk(notModified({ 'if-none-match': '"a"' }, { 'last-modified': lm }), 'no ETag stored')
  t.ok(notModified({ 'if-none-match': ' * ' }, { etag: '"a"' }))
  t.ok(notModified({ 'if-none-match': '"b" , W/"a"' }, { etag: 'W/"a"' }), 'any tag of the list, weak on both sides')
  t.notOk(notModified({ 'if-none-match': '"ab"' }, { etag: '"a"' }))
  t.notOk(notModified({ 'if-none-match': '"aW/"' }, { etag: '"a"' }), 'W/ only as a prefix')
  t.notOk(notModified({}, { etag: '"a"', 'last-modified': lm }), 'no conditional')
  t.notOk(notModified({ 'if-modified-since': 'Sun, 31 Dec 2023 23:59:59 GMT' }, { 'last-modified': lm }), 'modified after the date')
  t.ok(notModified({ 'if-modified-since': 'Mon, 01 Jan 2024 00:00:01 GMT' }, { 'last-modified': lm }))
  t.ok(notModified({ 'if-modified-since': lm }, { date: lm }), 'Date stands in for Last-Modified')
  t.notOk(notModified({ 'if-modified-since': lm }, {}), 'no date to compare')
  t.notOk(notModified({ 'if-modified-since': 'yesterday' }, { 'last-modified': lm }), 'an invalid date')
  const headers: HeaderMap = { 'if-none-match': '"c"', 'if-modified-since': lm, 'if-match': '"c"', 'if-unmodified-since': lm, 'if-range': '"c"', range: 'bytes=0-1', accept: '*/*' }
  setValidators(headers, { etag: '"s"', 'last-modified': 'Tue, 02 Jan 2024 00:00:00 GMT' })
  t.same(headers, { accept: '*/*', 'if-none-match': '"s"', 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' })
  const none: HeaderMap = { 'if-none-match': '"c"', 'if-modified-since': lm }
  setValidators(none, {})
  t.same(Object.keys(none), [], 'the client\'s conditionals go even when the entry has no validator')
  const kept = { 'content-length': '5', 'content-encoding': 'gzip', 'content-type': 'text/plain', 'content-range': 'bytes 0-4/5', 'transfer-encoding': 'chunked', 'x-request-id': 'r1', 'set-cookie': 'a=1', 'cache-status': 'X', age: '1' }
  t.same(updatedHeaders(kept, { 'content-length': '0', 'content-encoding': 'br', 'content-type': 'text/evil', 'content-range': 'bytes 0-0/1', 'transfer-encoding': 'identity', 'x-request-id': 'r2', 'set-cookie': 'b=2', 'cache-status': 'Y', age: '9', expires: 'e', 'x-gone': undefined }),
    { ...kept, expires: 'e' }, 'a 304 does not replace what describes the stored body, nor per-response fields')
  t.same(notModifiedHeaders({ 'cache-control': 'max-age=1', 'content-location': '/c', date: 'd', etag: '"e"', expires: 'x', vary: 'accept', 'last-modified': lm, 'content-type': 'text/plain', 'content-length': '5', 'x-other': '1' }),
    { 'cache-control': 'max-age=1', 'content-location': '/c', date: 'd', etag: '"e"', expires: 'x', vary: 'accept', 'last-modified': lm })
  t.same(Object.keys(notModifiedHeaders({ etag: '"e"' })), ['etag'], 'only the fields the entry has')
})

t.test('Vary: empty names, absent and repeated headers; values as sent outside the Accept family', async t => {
  t.same(varyNames(undefined), [])
  t.same(varyNames(' , X-B,,x-a '), ['x-a', 'x-b'], 'sorted, empty names dropped')
  t.same(varyNames(['accept', 'x-b']), ['accept', 'x-b'])
  t.same(varyNames('*'), ['*'])
  t.equal(variantKey([], { accept: 'x' }), '')
  t.equal(variantKey(['accept', 'x-v'], { 'x-v': ' Ab , C ' }), '|h:accept|h:x-v=Ab , C', 'ends trimmed; an absent field a part of its own')
  t.equal(variantKey(['accept-encoding'], { 'accept-encoding': ['GZIP', ' br'] }), '|h:accept-encoding=gzip,br')
  t.equal(variantKey(['accept-language'], { 'accept-language': 'EN-us ,  fr;q=0.5' }), '|h:accept-language=en-us,fr;q=0.5')
  t.equal(variantKey(['x-v'], { 'x-v': 'a b' }), '|h:x-v=a b', 'inner spaces kept')
  t.equal(variantKey(['x-v'], { 'x-v': 'a ,b,  c' }), '|h:x-v=a ,b,  c', 'a field of unknown syntax: as sent')
  t.equal(variantKey(['accept-version'], { 'accept-version': '1.0.0-Beta' }), '|h:accept-version=1.0.0-Beta', 'not of the Accept family by its name alone')
})

t.test('cache keys: defaults, empty query, repeated and bare parameters, header values, URL purge prefix', async t => {
  const key = compileKey('r')
  // As applyForwarded sets them for a client on a plain listener: the Host, and http.
  const fwd = (host: string) => ({ 'x-forwarded-proto': 'http', 'x-forwarded-host': host })
  t.same(key('/p', '', 'A.example:80', fwd('a.example')), { primary: 'c:r:/p?#a.example|http|', urlTag: 'u:a.example/p' })
  t.equal(key('/p', '?', 'a', fwd('a')).primary, 'c:r:/p?#a|http|')
  t.equal(key('/p', '?b&a=2&&a=1', undefined, {}).primary, 'c:r:/p?a=2&a=1&b#||', 'bare names kept, empty pairs dropped, the values of one name in their order')
  t.equal(key('/p', '', 'a', fwd('a'), '/p').primary, 'c:r:/p?#a|http|', 'the upstream path the same: not repeated')
  t.equal(key('/p', '', 'a', fwd('a'), '/v2/p').primary, 'c:r:/p?#a|http|>/v2/p')
  t.equal(key('/p', '', 'a', fwd('a'), '/v2/p').urlTag, 'u:a/p', 'tags and purges by the client\'s URL')
  t.not(key('/p', '?sort=name&sort=-date', undefined, {}).primary, key('/p', '?sort=-date&sort=name', undefined, {}).primary, 'a list in another order is another query')
  t.equal(key('/p', '', 'a:8080', fwd('a:8080')).primary, 'c:r:/p?#a:8080|http|', 'only the default ports are dropped')
  t.equal(key('/p', '', 'a:4430', fwd('a:4430')).primary, 'c:r:/p?#a:4430|http|')
  t.equal(compileKey('r', { query: { include: ['a', 'b'], ignore: ['b'] } })('/p', '?a=1&b=2&c=3', undefined, {}).primary, 'c:r:/p?a=1#||', 'ignore wins over include')
  t.equal(compileKey('r', { query: { ignore: ['flag'] } })('/p', '?flag&a=1', undefined, {}).primary, 'c:r:/p?a=1#||', 'a bare name is ignored by its whole name')
  t.equal(compileKey('r', { headers: ['X-A', 'x-b'] })('/p', '', undefined, { 'x-a': ['1', '2'] }).primary, 'c:r:/p?#||x-a=1,2|x-b=|')
  t.equal(compileKey('r', { query: { include: [] } })('/p', '?a=1', undefined, {}).primary, 'c:r:/p?#||', 'an empty include list keeps no parameter')
  t.equal(urlKeyPrefix('r', { headers: ['x-a'], query: { ignore: ['u'] } }, new URL('https://API.example:443/p?u=1&b=2&a=1'), '/p'), 'c:r:/p?a=1&b=2#api.example|')
  t.equal(urlKeyPrefix('r', { host: false }, new URL('https://api.example/p'), '/p'), 'c:r:/p?#|')
})

t.test('cache keys: the scheme and host the upstream is told', async t => {
  const key = (host: string, headers: Record<string, string | string[]>, config = {}) => compileKey('r', config)('/p', '', host, headers).primary
  t.equal(key('a', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a' }), 'c:r:/p?#a|https|', 'the scheme, always')
  t.equal(key('a', { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example' }), 'c:r:/p?#a|http|@evil.example|', 'a host other than the Host')
  t.equal(key('A:80', { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'A:80' }), 'c:r:/p?#a|http|@A:80|', 'as told, not as the Host is normalized')
  t.equal(key('a', { 'x-forwarded-proto': 'http' }), 'c:r:/p?#a|http|@|', 'none told (a plugin removed it)')
  t.equal(key('a', { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example' }, { host: false }), 'c:r:/p?#|http|', 'key.host: false leaves out both')
  t.equal(key('a', { 'x-forwarded-proto': 'https|@b', 'x-forwarded-host': 'a' }), 'c:r:/p?#a|https%7c@b|', 'a value cannot end its part early')
  t.not(key('a', { 'x-forwarded-proto': 'https|@b', 'x-forwarded-host': 'a' }), key('a', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'b' }))
  t.equal(key('a', { 'x-forwarded-proto': 'x%7c', 'x-forwarded-host': 'b%|' }), 'c:r:/p?#a|x%257c|@b%25%7c|', 'nor pass for an escaped one')
  t.equal(key('a', { 'x-forwarded-proto': 'http', 'x-forwarded-host': ['b', 'c'] }), 'c:r:/p?#a|http|@b,c|')
})

t.test('hit replies: 204 without Content-Length, a new ttl alone rebuilds', async t => {
  const e: Entry = { status: 204, headers: {}, responseTime: NOW, initialAge: 0, lifetime: 60, swr: 0, sie: 0, mustRevalidate: false, variant: '', keyed: '', tags: [], body: Buffer.alloc(0) }
  const a = hitReply(e, 'C', 10, 'GET')
  t.same(a.headers, { age: '10', 'cache-status': 'C; hit; ttl=50' })
  const b = hitReply(e, 'C', 10.6, 'GET')
  t.not(b, a, 'same whole Age, another ttl')
  t.same(b.headers, { age: '10', 'cache-status': 'C; hit; ttl=49' })
  t.same(hitReply(e, 'C', 11.1, 'GET').headers, { age: '11', 'cache-status': 'C; hit; ttl=49' }, 'same ttl, another whole Age')
  t.equal(hitReply(e, 'C', 10.6, 'HEAD').body, undefined)
})

t.test('storable: statuses, ranges, joined header lines, Vary *, Set-Cookie', async t => {
  const ok = new Set([200, 404])
  const r = (status: number, response: HeaderMap, request: Record<string, string> = {}) => unstorableReason('GET', '/x', request, status, response, ok)
  t.equal(r(200, { 'cache-control': 'max-age=60' }), undefined)
  t.equal(r(404, { 'cache-control': 'max-age=60' }), undefined)
  t.equal(r(203, { 'cache-control': 'max-age=60' }), 'status', 'a status left out of statuses')
  t.equal(r(200, { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-0/9' }), 'partial')
  t.equal(r(200, { 'cache-control': ['max-age=60', 'private'] }), 'uncacheable', 'every Cache-Control line counts')
  t.equal(r(200, { 'cache-control': 'max-age=60' }, { authorization: 'Bearer x' }), 'uncacheable', 'Authorization without public')
  t.equal(r(200, { 'cache-control': 'max-age=60', vary: 'Accept , * ' }), 'vary-star')
  t.equal(r(200, { 'cache-control': 'max-age=60', vary: 'x-star' }), undefined)
  t.equal(r(200, { 'cache-control': 'max-age=60', vary: 'x-*' }), undefined, 'a name with a star in it is not *')
  t.equal(r(200, { 'cache-control': 'private, max-age=60' }), 'uncacheable', 'a shared cache')
  t.equal(r(200, { 'cache-control': 'max-age=60', 'set-cookie': ['a=1', 'b=2'] }), 'set-cookie')
  t.equal(r(200, { 'cache-control': 'max-age=60, public', 'set-cookie': ['a=1', 'b=2'] }), undefined)
})

t.test('storable: directive names in any case (RFC 9111 5.2), quoted commas inside their value', async t => {
  const r = (cc: string, request: Record<string, string> = {}) => unstorableReason('GET', '/x', request, 200, { 'cache-control': cc, 'last-modified': 'Mon, 01 Jan 2001 00:00:00 GMT' }, new Set([200]))
  t.equal(r('max-age=60, Private'), 'uncacheable')
  t.equal(r('No-Store, max-age=60'), 'uncacheable')
  t.equal(r('NO-STORE'), 'uncacheable', 'not stored by the Last-Modified heuristic either')
  t.equal(r('max-age=60', { 'cache-control': 'No-Store' }), 'uncacheable', 'the request\'s')
  t.equal(r('Public, max-age=60', { authorization: 'Bearer x' }), undefined, 'Public lets Authorization be stored')
  t.equal(r('S-MAXAGE=60', { authorization: 'Bearer x' }), undefined)
  t.equal(r('ext="a, private", max-age=60'), undefined, 'a private inside a quoted value is no directive')
  t.equal(r('Private="x-user", max-age=60'), undefined, 'qualified in any case: its fields withheld')
})

t.test('storable: must-understand lets a status whose rules are known be stored despite no-store, nothing else', async t => {
  const r = (status: number, cc: string | string[], request: Record<string, string> = {}) => unstorableReason('GET', '/x', request, status, { 'cache-control': cc }, new Set([200, 206, 404, 418]))
  t.equal(r(200, 'no-store, max-age=60'), 'uncacheable', 'no-store alone')
  t.equal(r(200, 'no-store, must-understand, max-age=60'), undefined)
  t.equal(r(200, ['no-store', 'Must-Understand', 'max-age=60']), undefined, 'over several lines, any case')
  t.equal(r(404, 'must-understand, no-store'), undefined, 'cacheable by default, no max-age needed')
  t.equal(r(418, 'no-store, must-understand, max-age=60'), 'uncacheable', 'a status whose caching rules are unknown: never')
  t.equal(r(418, 'must-understand, max-age=60'), 'uncacheable')
  t.equal(r(200, 'no-store, must-understand, private, ext="a, b", max-age=60'), 'uncacheable', 'the other directives, quoted ones too, still hold')
  t.equal(r(200, 'no-store, must-understand, max-age=60, no-cache="x-a"'), undefined)
  t.equal(r(200, 'no-store, must-understand, max-age=60', { 'cache-control': 'no-store' }), 'uncacheable', 'the request\'s no-store stands')
  t.equal(r(200, 'must-understand, max-age=60', { authorization: 'Bearer x' }), 'uncacheable', 'Authorization still needs public')
})

t.test('qualified private and no-cache: stored without their fields, unless they name one describing the body', async t => {
  const r = (cc: string, extra: HeaderMap = {}) => unstorableReason('GET', '/x', {}, 200, { 'cache-control': cc, ...extra }, new Set([200]))
  t.equal(r('private="x-user", max-age=60'), undefined)
  t.equal(r('private=x-user, max-age=60'), undefined, 'the token form too')
  t.equal(r('private="", max-age=60'), 'uncacheable', 'no field named: bare')
  t.equal(r('private="x-user, Content-Type", max-age=60'), 'uncacheable', 'a field the body needs: bare')
  t.equal(r('private="x-user", private, max-age=60'), 'uncacheable', 'bare beside it: bare')
  t.equal(r('private, max-age=60, private="x-user"'), 'uncacheable', 'in either order')
  t.equal(r('max-age=60, private="Set-Cookie"', { 'set-cookie': 'a=1' }), undefined, 'the cookie withheld')
  t.equal(r('max-age=60, no-cache="set-cookie"', { 'set-cookie': 'a=1' }), undefined)
  t.equal(r('max-age=60, private="x-user"', { 'set-cookie': 'a=1' }), 'set-cookie', 'another field withheld: the cookie still needs public')
  t.same(withheldFields(parseCacheControl('private="X-User, x-b", no-cache=x-c, max-age=1')), ['x-user', 'x-b', 'x-c'])
  t.same(withheldFields(parseCacheControl(['private="x-a"', 'private="x-b"'])), ['x-a', 'x-b'], 'repeated: the lists add up')
  t.same(withheldFields(parseCacheControl('private, no-cache="vary"')), [], 'bare forms withhold the whole response, not fields')
  const f = (cc: string) => freshness(200, { 'cache-control': cc }, 0, RULES)
  t.same([f('no-cache="x-user", max-age=60').lifetime, f('no-cache="x-user", max-age=60').mustRevalidate], [60, false], 'qualified no-cache: fresh as max-age says')
  t.same([f('no-cache, max-age=60').lifetime, f('no-cache, max-age=60').mustRevalidate], [0, true])
  t.same([f('no-cache="content-encoding", max-age=60').lifetime, f('no-cache="Vary", max-age=60').mustRevalidate], [0, true], 'naming a field the body needs: bare')
  const headers: Record<string, string | string[]> = { 'x-user': 'u', 'x-c': 'c', 'x-shared': 's', 'set-cookie': 'a=1' }
  withhold(headers, { 'cache-control': 'private="x-user, set-cookie", no-cache="X-C"' })
  t.same(headers, { 'x-shared': 's' })
  t.same(ownFields({ 'x-user': 'u2', 'set-cookie': 'b=2', etag: '"1"' }, { 'cache-control': 'max-age=1, private="x-user"' }), { 'set-cookie': 'b=2', 'x-user': 'u2' }, 'a 304\'s own fields go to its client')
})

t.test('collapse: waiters get the leader\'s entry once; a timeout releases them; a late finish does not end a newer flight; a kept flight answers until ended', async t => {
  const c = new Collapser(50)
  const hold = setInterval(() => {}, 1000) // the flight's timer is unref'd: keep the test alive for it
  t.teardown(() => clearInterval(hold))
  t.equal(c.waitFor('k'), undefined)
  const finish = c.lead('k', 'u:k')
  const waiting = c.waitFor('k')
  t.not(waiting, undefined)
  const e = { status: 200 } as unknown as Entry
  finish(e)
  t.equal(await waiting, e)
  t.equal(c.waitFor('k'), undefined, 'done: the next request leads')
  const stale = c.lead('t', 'u:t')
  const first = c.waitFor('t')
  t.equal(await first, undefined, 'released by the timeout')
  const next = c.lead('t', 'u:t')
  const second = c.waitFor('t')
  stale(e)
  t.equal(c.waitFor('t'), second, 'the timed-out leader finishing late leaves the new flight alone')
  next(undefined)
  t.equal(await second, undefined)
  // Kept: the entry answers requests that come after it, at once, past the timeout, until the next call.
  const keeper = c.lead('kept', 'u:kept')
  keeper(e, true)
  await new Promise(resolve => setTimeout(resolve, 80))
  t.equal(await c.waitFor('kept'), e, 'a kept flight answers with its entry')
  keeper(LEFT)
  t.equal(c.waitFor('kept'), undefined, 'ended by the next call')
})

t.test('freshness at its bounds, to the millisecond: lifetime, max-age, min-fresh, max-stale, stale-while-revalidate, stale-if-error', async t => {
  // Stored at NOW, fresh for 10 s.
  const entry = (over: Partial<Entry> = {}): Entry => ({ status: 200, headers: {}, responseTime: NOW, initialAge: 0, lifetime: 10, swr: 0, sie: 0, mustRevalidate: false, variant: '', keyed: '', tags: [], body: Buffer.alloc(0), ...over })
  const at = (ms: number) => NOW + ms
  t.equal(evaluate(entry(), {}, at(9_999), RULES), 'fresh')
  t.equal(evaluate(entry(), {}, at(10_000), RULES), 'stale', 'an age equal to the lifetime is stale (fresh while lifetime > age)')
  t.equal(evaluate(entry(), { 'max-age': '5' }, at(5_000), RULES), 'fresh', 'max-age: an age of exactly max-age is accepted')
  t.equal(evaluate(entry(), { 'max-age': '5' }, at(5_001), RULES), 'request')
  t.equal(evaluate(entry(), { 'min-fresh': '4' }, at(6_000), RULES), 'fresh', 'min-fresh: exactly that much freshness left is enough')
  t.equal(evaluate(entry(), { 'min-fresh': '4' }, at(6_001), RULES), 'request')
  t.equal(evaluate(entry(), { 'max-stale': '3' }, at(13_000), RULES), 'stale-ok', 'max-stale: stale by exactly max-stale is accepted')
  t.equal(evaluate(entry(), { 'max-stale': '3' }, at(13_001), RULES), 'stale')
  t.equal(evaluate(entry({ swr: 3 }), {}, at(12_999), RULES), 'swr')
  t.equal(evaluate(entry({ swr: 3 }), {}, at(13_000), RULES), 'stale', 'stale-while-revalidate: stale by less than its value')
  t.equal(evaluate(entry(), {}, at(10_000), RULES), 'stale', 'without it, not even at the moment of expiry')
  t.ok(staleIfErrorAllows(entry({ sie: 3 }), 12.999, {}, RULES))
  t.notOk(staleIfErrorAllows(entry({ sie: 3 }), 13, {}, RULES), 'stale-if-error: stale by less than its value')
  t.notOk(staleIfErrorAllows(entry(), 10, {}, RULES), 'without it, not even at the moment of expiry')
  t.notOk(staleIfErrorAllows(entry({ sie: 3, mustRevalidate: true }), 10.5, {}, RULES), 'never with must-revalidate')
  t.ok(staleIfErrorAllows(entry(), 15, { 'stale-if-error': '5' }, RULES), "the request's: stale by no more than its value (a limit, as max-stale)")
  t.notOk(staleIfErrorAllows(entry(), 15.001, { 'stale-if-error': '5' }, RULES))
  t.notOk(staleIfErrorAllows(entry({ mustRevalidate: true }), 10.5, { 'stale-if-error': '60' }, RULES), "the request's neither, with must-revalidate")
})

t.test('policyHeaders: the first targeted field with a valid, non-empty value stands in for Cache-Control and Expires (RFC 9213 2.2)', async t => {
  const headers: HeaderMap = { 'cache-control': 'no-store', expires: 'Thu, 01 Jan 2099 00:00:00 GMT', 'cdn-cache-control': 'max-age=60, must-revalidate', 'portcullis-cache-control': 'max-age=5' }
  t.equal(policyHeaders(headers, []), headers, 'no targets: the headers as they are')
  const policy = policyHeaders(headers, ['cdn-cache-control'])
  t.equal(policy['cache-control'], 'max-age=60, must-revalidate')
  t.notOk('expires' in policy, 'Expires ignored too')
  t.equal(headers['cache-control'], 'no-store', "the response's own headers untouched")
  t.equal(policyHeaders(headers, ['portcullis-cache-control', 'cdn-cache-control'])['cache-control'], 'max-age=5', 'in the order of the list')
  t.equal(policyHeaders(headers, ['absent', 'cdn-cache-control'])['cache-control'], 'max-age=60, must-revalidate')
  const read = (value: string) => policyHeaders({ 'cache-control': 'max-age=1', 'cdn-cache-control': value }, ['cdn-cache-control'])['cache-control']
  t.equal(read(''), 'max-age=1', 'empty: Cache-Control rules')
  t.equal(read('max-age=60,,'), 'max-age=1', 'not a Structured Fields dictionary: Cache-Control rules')
  t.equal(read('max-age="60"'), '', 'valid, but nothing usable: no directives, Cache-Control still ignored')
  t.equal(read('max-age=1.5, private'), 'private', 'a decimal max-age is left out')
  t.equal(read('none'), 'none', "RFC 9213's example of a field that says nothing")
})
