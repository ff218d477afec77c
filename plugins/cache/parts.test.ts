import t from 'tap'
import { parseCacheControl, requestDirectives, seconds } from './cache-control.ts'
import { compileKey } from './cache-key.ts'
import { notModified, updatedHeaders } from './conditional.ts'
import { freshness, type Entry } from './entry.ts'
import { hitReply } from './hit-reply.ts'
import { variantKey, varyNames } from './vary.ts'

const RULES = { heuristicMax: 3600, defaultTtl: 0 }
const NOW = Date.parse('2026-01-01T12:00:00Z')

t.test('Cache-Control parsing', async t => {
  t.same(parseCacheControl('Max-Age=60, no-cache="set-cookie, x-a", public'), { 'max-age': '60', 'no-cache': 'set-cookie, x-a', public: true })
  t.same(parseCacheControl(['max-age=1', 's-maxage="5"']), { 'max-age': '1', 's-maxage': '5' })
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
  t.equal(f({}, 200, { heuristicMax: 3600, defaultTtl: 42 }).lifetime, 42)
  t.equal(f({ 'cache-control': 'no-cache, max-age=60' }).lifetime, 0)
  t.equal(f({ 'cache-control': 'max-age=60', age: '20' }).initialAge, 20)
  t.equal(freshness(200, { date: new Date(NOW - 30_000).toUTCString() }, NOW, RULES).initialAge, 30, 'apparent age from Date')
  t.same(f({ 'cache-control': 'max-age=1, stale-while-revalidate=5, stale-if-error=9' }), { initialAge: 0, lifetime: 1, swr: 5, sie: 9, mustRevalidate: false })
})

t.test('Vary names and normalized variant keys', async t => {
  t.same(varyNames('Accept-Encoding, accept-language,Accept-Encoding'), ['accept-encoding', 'accept-language'])
  t.same(varyNames('accept, *'), ['*'])
  t.equal(variantKey(['accept-language', 'x-v'], { 'accept-language': 'EN , Fr', 'x-v': 'A' }), '|v:accept-language=en,fr|v:x-v=A')
})

t.test('cache keys: sorted query, include and ignore lists, headers, host', async t => {
  const key = compileKey('r', { query: { ignore: ['utm'] }, headers: ['X-Tenant'] })
  t.same(key('/p', '?b=2&utm=1&a=1', { host: 'Api.Example.com:443', 'x-tenant': 't1' }), { primary: 'c:r:/p?a=1&b=2#api.example.com|x-tenant=t1|', urlTag: 'u:api.example.com/p' })
  t.equal(compileKey('r', { host: false, query: { include: ['id'] } })('/p', '?x=1&id=2', { host: 'a' }).primary, 'c:r:/p?id=2#|')
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
  const e: Entry = { status: 200, headers: { 'content-type': 'text/plain', etag: '"a"' }, responseTime: NOW, initialAge: 0, lifetime: 60, swr: 0, sie: 0, mustRevalidate: false, variant: '', tags: [], body }
  const first = hitReply(e, 'Edge', 10.2, 'GET')
  t.same(first, { status: 200, headers: { 'content-type': 'text/plain', etag: '"a"', age: '10', 'content-length': '5', 'cache-status': 'Edge; hit; ttl=50' }, body })
  t.equal(hitReply(e, 'Edge', 10.4, 'GET'), first, 'the same reply within the second')
  t.same(hitReply(e, 'Edge', 10.4, 'HEAD'), { status: 200, headers: first.headers }, 'HEAD: the same headers, no body')
  const later = hitReply(e, 'Edge', 11.1, 'GET')
  t.not(later, first)
  t.same(later.headers, { 'content-type': 'text/plain', etag: '"a"', age: '11', 'content-length': '5', 'cache-status': 'Edge; hit; ttl=49' })
  t.same(first.headers?.age, '10', 'a reply already sent is left as it was')
  t.same(e.headers, { 'content-type': 'text/plain', etag: '"a"' }, 'the entry is not changed')
})
