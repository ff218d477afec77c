import type { IncomingMessage, ServerResponse } from 'node:http'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { rig } from '../../test/helpers/cache-rig.ts'

// Behind a trusted proxy the forwarding headers it sends reach the upstream as sent: those an
// answer may be built from are in the key, so one client's `Forwarded: host=evil.example` is never
// served to the next.

const TRUSTED = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  trustProxy: [loopback]'
const HOST = 'shop.example'

// The names src/proxy/forwarded.ts passes on from a trusted proxy, read from its list: one added
// there is keyed unless it is a client's address (then it belongs in ADDRESSES).
const listed = /const PROXY_HEADERS = \[([^\]]*)\]/.exec(readFileSync(new URL('../../src/proxy/forwarded.ts', import.meta.url), 'utf8'))?.[1] ?? ''
const PROXY_HEADERS = [...listed.matchAll(/'([^']+)'/g)].map(m => m[1] as string)
// A client's address each, often on every request behind a CDN: left out of the key (X-Real-IP is the gateway's own).
const ADDRESSES = ['x-real-ip', 'x-original-forwarded-for', 'true-client-ip', 'x-client-ip', 'client-ip', 'x-cluster-client-ip', 'cf-connecting-ip',
  'fastly-client-ip', 'forwarded-for', 'x-originating-ip', 'x-envoy-external-address']

/** Spring-style: the first Forwarded element's proto= and host= win over X-Forwarded-*; the prefix and port too. */
function link (h: IncomingMessage['headers']): string {
  const fwd = h.forwarded
  const pick = (name: string) => fwd === undefined ? undefined : new RegExp(`${name}=("?)([^;,"]+)\\1`, 'i').exec(fwd)?.[2]
  const proto = fwd === undefined ? h['x-forwarded-proto'] : pick('proto') ?? 'http'
  const host = fwd === undefined ? h['x-forwarded-host'] : pick('host') ?? h.host
  return `${String(proto)}://${String(host)}:${String(h['x-forwarded-port'])}${h['x-forwarded-prefix'] ?? ''}/next`
}
const send = (res: ServerResponse, body: string) => {
  res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=60' }).end(body)
}
/** The link, then every other forwarding header the upstream got (those the gateway sets aside). */
const handler = (req: IncomingMessage, res: ServerResponse) => {
  const told = PROXY_HEADERS.filter(n => n !== 'x-real-ip' && n !== 'x-forwarded-port' && req.headers[n] !== undefined).map(n => `${n}: ${String(req.headers[n])}`)
  send(res, [link(req.headers), ...told].join('\n'))
}

t.test('the list read from forwarded.ts is there, and the addresses left out are in it', async t => {
  t.ok(PROXY_HEADERS.length > 20)
  for (const name of ADDRESSES) t.ok(PROXY_HEADERS.includes(name), name)
})

t.test('a forwarding header a trusted proxy passes on is keyed: its answer is never served without it', async t => {
  const r = await rig(t, handler, '{}', TRUSTED)
  for (const name of PROXY_HEADERS.filter(n => !ADDRESSES.includes(n))) {
    const value = name === 'x-forwarded-port' ? '6666' : name === 'forwarded' || name === 'x-forwarded' ? 'for=192.0.2.1;host=evil.example;proto=https' : '//evil.example'
    const path = `/n/${name}`
    const poisoned = await r.get(path, { host: HOST, [name]: value })
    t.match(poisoned.body, /evil\.example|6666/, `${name}: the upstream built its answer from it`)
    t.match(poisoned.cacheStatus, /stored/, name)
    const next = await r.get(path, { host: HOST })
    t.notMatch(next.body, /evil\.example|6666/, `${name}: a request without it does not get that answer`)
    t.match(next.cacheStatus, /fwd=uri-miss/, name)
    t.equal((await r.get(path, { host: HOST, [name]: value })).cacheStatus.includes('; hit;'), true, `${name}: the same value shares its entry`)
  }
})

t.test('Forwarded is keyed without its for= pairs: each client\'s address does not split the entry, anything else does', async t => {
  const r = await rig(t, handler, '{}', TRUSTED)
  const proxied = (fwd: string) => r.get('/p', { host: HOST, forwarded: fwd })
  t.match((await proxied('for=192.0.2.1;proto=https;host=shop.example')).cacheStatus, /stored/)
  for (const fwd of ['for=198.51.100.7;proto=https;host=shop.example', 'For="[2001:db8::1]:4711";proto=https;host=shop.example', 'for=unknown;proto=https;host=shop.example',
    'for=_hidden;proto=https;host=shop.example']) {
    const res = await proxied(fwd)
    t.same([res.body, res.cacheStatus.includes('; hit;')], ['https://shop.example:80/next\nforwarded: for=192.0.2.1;proto=https;host=shop.example', true], fwd)
  }
  // What the upstream may read otherwise: a host= inside a quoted for= (Spring finds it), another element, another order.
  for (const fwd of ['for="x;host=evil.example";proto=https;host=shop.example', 'for=192.0.2.1,proto=https;host=shop.example', 'proto=https;host=shop.example;for=192.0.2.1']) {
    t.match((await proxied(fwd)).cacheStatus, /fwd=uri-miss/, fwd)
  }
  // Spring reads Forwarded in place of X-Forwarded-*: one with only for= is not the same as none.
  t.match((await proxied('for=192.0.2.1')).body, /^http:\/\//)
  const none = await r.get('/p', { host: HOST, 'x-forwarded-proto': 'https' })
  t.same([none.body, none.cacheStatus.includes('fwd=uri-miss')], ['https://shop.example:443/next', true])
  t.match((await proxied('for=203.0.113.9')).cacheStatus, /; hit;/, 'for= alone: one entry for every client')
})

t.test('client addresses are not keyed, nor a trusted X-Forwarded-Port the gateway would have sent itself', async t => {
  const r = await rig(t, (req, res) => send(res, link(req.headers)), '{}', TRUSTED)
  t.match((await r.get('/p', { host: HOST })).cacheStatus, /stored/)
  for (const headers of [{ 'x-forwarded-for': '192.0.2.1' }, { 'true-client-ip': '192.0.2.2' }, { 'cf-connecting-ip': '192.0.2.3' }, { 'x-forwarded-port': '80' }] as Array<Record<string, string>>) {
    const res = await r.get('/p', { host: HOST, ...headers })
    t.same([res.body, res.cacheStatus.includes('; hit;')], ['http://shop.example:80/next', true], JSON.stringify(headers))
  }
  t.match((await r.get('/p', { host: HOST, 'x-forwarded-port': '443' })).cacheStatus, /fwd=uri-miss/, 'another port than the Host\'s: its own entry')
  t.match((await r.get('/p', { host: 'shop.example:8080', 'x-forwarded-port': '8080' })).cacheStatus, /stored/)
  t.match((await r.get('/p', { host: 'shop.example:8080' })).cacheStatus, /; hit;/, 'the port of the Host, as the gateway derives it')
  t.match((await r.get('/p', { host: HOST, 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' })).cacheStatus, /stored/)
  t.match((await r.get('/p', { host: HOST, 'x-forwarded-proto': 'https' })).cacheStatus, /; hit;/, 'or of the scheme')
  t.equal(r.seen.length, 4)
})

t.test('from an untrusted client, forwarding headers split nothing: the gateway drops them', async t => {
  const r = await rig(t, handler)
  const first = await r.get('/p', { host: HOST })
  for (const name of ['forwarded', 'x-forwarded-prefix', 'x-forwarded-port', 'x-forwarded-ssl']) {
    const res = await r.get('/p', { host: HOST, [name]: 'host=evil.example' })
    t.same([res.body, res.cacheStatus.includes('; hit;')], [first.body, true], name)
  }
})

t.test('key.host: false: X-Forwarded-Port is keyed even when it is the forwarded host\'s, which the key leaves out', async t => {
  const r = await rig(t, (req, res) => send(res, link(req.headers)), '{ key: { host: false } }', TRUSTED)
  const poisoned = await r.get('/next', { host: HOST, 'x-forwarded-host': `${HOST}:6666`, 'x-forwarded-port': '6666' })
  t.same([poisoned.body, poisoned.cacheStatus.includes('stored')], [`http://${HOST}:6666:6666/next`, true])
  const plain = await r.get('/next', { host: HOST })
  t.same([plain.body, plain.cacheStatus.includes('fwd=uri-miss')], [`http://${HOST}:80/next`, true], 'a plain request does not get that answer')
  t.match((await r.get('/next', { host: 'other.example' })).cacheStatus, /; hit;/, 'the port the gateway derives: one entry for every host')
})
