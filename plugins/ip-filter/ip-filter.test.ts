import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'

const up = await startUpstream()
t.teardown(() => up.close())

// X-Forwarded-For is believed from loopback (trustProxy), so a test can speak for any address.
const gw = await startGateway(`
server:
  listen: { host: "::", port: 0 }
  trustProxy: [loopback]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: allow
    match: { path: /allow }
    upstream: up
    plugins:
      ip-filter: { allow: [10.0.0.0/8, 2001:db8::/32, "::1", 127.0.0.1], deny: [10.6.6.6] }
  - name: deny
    match: { path: /deny }
    upstream: up
    plugins:
      ip-filter: { deny: [192.0.2.0/24, "2001:db8:bad::/48"] }
  - { name: no-v6, match: { path: /no-v6 }, upstream: up, plugins: { ip-filter: { deny: ["::/0"] } } }
  - { name: v6-only, match: { path: /v6-only }, upstream: up, plugins: { ip-filter: { allow: ["::/0"] } } }
  - { name: mapped, match: { path: /mapped }, upstream: up, plugins: { ip-filter: { allow: ["::ffff:10.0.0.0/104", "2001:db8::/32"] } } }
`, { admin: true })
t.teardown(() => gw.close())
const port = new URL(gw.url).port

async function status (path: string, forwardedFor?: string, host = '127.0.0.1'): Promise<number> {
  const res = await request(`http://${host}:${port}${path}`, { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } })
  if (res.statusCode === 403) t.match(await res.body.json(), { error: 'ip_denied', message: 'requests from this address are not allowed' })
  else await res.body.dump()
  return res.statusCode
}

t.test('allow list, with a deny that wins over it', async t => {
  const cases: Array<[string, number]> = [
    ['10.1.2.3', 200], ['11.1.2.3', 403], ['10.6.6.6', 403], ['::ffff:10.1.2.3', 200], ['::ffff:11.1.2.3', 403],
    ['2001:db8:1::5', 200], ['2001:db9::5', 403], ['10.1.2.3:4567', 200], ['10.6.6.6:4567', 403],
    // No address: the client is the proxy that sent it (127.0.0.1, allowed), as in nginx's realip.
    ['unknown', 200], ['unknown, 11.1.2.3', 403]
  ]
  for (const [ip, expected] of cases) t.equal(await status('/allow', ip), expected, ip)
})

t.test('deny list', async t => {
  const series = 'portcullis_ip_filter_refused_total{route="deny"}'
  const before = await metricValue(gw.adminUrl as string, series)
  const cases: Array<[string, number]> = [
    ['192.0.2.44', 403], ['::ffff:192.0.2.44', 403], ['192.0.3.1', 200], ['2001:db8:bad:1::1', 403], ['2001:db8:bad0::1', 200],
    ['garbage, 192.0.2.44', 403]
  ]
  for (const [ip, expected] of cases) t.equal(await status('/deny', ip), expected, ip)
  t.equal(await metricValue(gw.adminUrl as string, series), before + 4, 'each refusal counted')
})

t.test('IPv4 and IPv6 rules stay apart: an IPv6 range holds IPv4 clients only when written inside ::ffff:0:0/96', async t => {
  const cases: Array<[string, string, number]> = [
    ['/no-v6', '192.0.2.1', 200], ['/no-v6', '::ffff:192.0.2.1', 200], ['/no-v6', '2001:db8::1', 403], ['/no-v6', '::1', 403],
    ['/v6-only', '192.0.2.1', 403], ['/v6-only', '::ffff:192.0.2.1', 403], ['/v6-only', '2001:db8::1', 200],
    ['/mapped', '10.1.2.3', 200], ['/mapped', '::ffff:10.1.2.3', 200], ['/mapped', '11.1.2.3', 403], ['/mapped', '2001:db8::1', 200]
  ]
  for (const [path, ip, expected] of cases) t.equal(await status(path, ip), expected, `${path} ${ip}`)
  t.equal(await status('/no-v6', undefined, '127.0.0.1'), 200, 'the IPv4 peer itself, on a dual-stack listener')
  t.equal(await status('/no-v6', undefined, '[::1]'), 403, 'the IPv6 one')
})

t.test('the peer address itself, over IPv4 and IPv6 loopback', async t => {
  t.equal(await status('/allow', undefined, '127.0.0.1'), 200, '127.0.0.1 is allowed')
  t.equal(await status('/allow', undefined, '[::1]'), 200, '::1 is allowed')
  t.equal(await status('/deny', undefined, '[::1]'), 200)
})

t.test('a forwarded address from a peer not trusted is ignored', async t => {
  const other = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: { allow: [10.0.0.0/8] } } }
`)
  t.teardown(() => other.close())
  const res = await request(`${other.url}/`, { headers: { 'x-forwarded-for': '10.1.1.1' } })
  t.equal(res.statusCode, 403, 'the peer, 127.0.0.1, is what counts')
  await res.body.dump()
})

t.test('a bad entry is a config error', async t => {
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: { deny: [example.com] } } }
`), /ip-filter\.deny\.0.*must be an IPv4 or IPv6 address or CIDR range|deny.*0/)
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: { deny: [10.0.0.0/33] } } }
`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.ip-filter\.deny\[0\]: "10\.0\.0\.0\/33" is not an IPv4 or IPv6 address or CIDR range/ })
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: { allow: [10.0.0.1, "2001:db8::/129"] } } }
`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.ip-filter\.allow\[1\]: "2001:db8::\/129" is not an IPv4 or IPv6 address or CIDR range/ })
})

t.test('a range with bits set past its prefix length is a config error naming the range it would be', async t => {
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: { allow: [127.0.0.1], deny: [10.0.0.0/8, 10.0.0.5/8, 10.0.0.0/08] } } }
`), { message: /routes\[0\]\.plugins\.ip-filter\.deny\[1\]: "10\.0\.0\.5\/8" has bits set past its prefix length: did you mean 10\.0\.0\.0\/8, or 10\.0\.0\.5\/32\?\n.*routes\[0\]\.plugins\.ip-filter\.deny\[2\]: "10\.0\.0\.0\/08": write the prefix length without a leading zero \(\/8\)/ })
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
plugins:
  ip-filter: { allow: ["1.2.3.4/0"] }
routes:
  - { name: r, match: { path: /* }, upstream: up }
`), { message: /plugins\.ip-filter\.allow\[0\]: "1\.2\.3\.4\/0" has bits set past its prefix length: did you mean 0\.0\.0\.0\/0, or 1\.2\.3\.4\/32\?/ })
})

t.test('an empty list is a config error, not a route open to everyone', async t => {
  const load = (filter: string) => startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: ${filter} } }
`)
  const emptyAllow = /routes\[0\]\.plugins\.ip-filter\.allow: an empty allow would let every client through: remove it, or list the addresses to allow/
  await t.rejects(load('{ allow: [] }'), { message: emptyAllow })
  await t.rejects(load('{ allow: [], deny: [] }'), { message: emptyAllow })
  await t.rejects(load('{ allow: [], deny: [10.0.0.0/8] }'), { message: emptyAllow })
  await t.rejects(load('{ deny: [] }'), { message: /routes\[0\]\.plugins\.ip-filter\.deny: an empty deny refuses nobody/ })
  const allowOnly = await load('{ allow: [127.0.0.1, "::1"], deny: [] }')
  t.teardown(() => allowOnly.close())
  const res = await request(`${allowOnly.url}/x`)
  await res.body.dump()
  t.equal(res.statusCode, 200, 'an empty deny beside an allow is fine')
})

t.test('a zone in a rule is a config error: it would match every interface', async t => {
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { ip-filter: { deny: [10.0.0.1, "fe80::%eth0/64"] } } }
`), { message: /routes\[0\]\.plugins\.ip-filter\.deny\[1\]: "fe80::%eth0\/64": a zone \(%name\) is not supported, it would match every interface/ })
})
