import t from 'tap'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'

// Some trusted proxies write a port into X-Forwarded-For (Azure Application Gateway: 203.0.113.7:51234,
// [2001:db8::1]:443): the client is the address without it, for the trust walk and everything after.

const up = await startUpstream()
t.teardown(() => up.close())

const limited = (name: string) => `  - name: ${name}
    match: { path: /${name} }
    upstream: up
    plugins:
      rate-limit: { by: [ ip ], limits: [ { name: ${name}, requests: 1, window: 1h } ] }
`
const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: [ 127.0.0.1, 10.0.0.0/8, "fd00::/8" ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: echo, match: { path: /echo }, upstream: up }
  - name: deny
    match: { path: /deny }
    upstream: up
    plugins:
      ip-filter: { deny: [ 203.0.113.0/24, "2001:db8:bad::/48" ] }
${limited('v4')}${limited('v6')}`)
t.teardown(() => gw.close())

let ids = 0
/** One request from the loopback peer (trusted) naming `forwardedFor`; its access-log line by request id. */
async function send (path: string, forwardedFor: string) {
  const id = `fp-${++ids}`
  const res = await request(`${gw.url}${path}`, { headers: { 'x-forwarded-for': forwardedFor, 'x-request-id': id } })
  const body = await res.body.json() as { headers?: Record<string, string> }
  const line = await waitForLog(gw.logs, { requestId: id })
  return { status: res.statusCode, seen: body.headers, clientIp: line?.clientIp }
}

t.test('the client address is the forwarded one without its port: X-Real-IP, the access log', async t => {
  const cases: Array<[string, string]> = [
    ['203.0.113.7:51234', '203.0.113.7'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[::ffff:203.0.113.7]:80', '::ffff:203.0.113.7']
  ]
  for (const [xff, client] of cases) {
    const { seen, clientIp } = await send('/echo', xff)
    t.equal(seen?.['x-real-ip'], client, `${xff}: X-Real-IP`)
    t.equal(clientIp, client, `${xff}: logged`)
    t.equal(seen?.['x-forwarded-for'], `${xff}, 127.0.0.1`, `${xff}: the proxy's list passed on as sent, the peer appended`)
  }
})

t.test('a trusted proxy written with a port is still trusted in the chain', async t => {
  const cases: Array<[string, string]> = [
    ['198.51.100.4:1111, 10.0.0.2:8080', '198.51.100.4'],
    ['[2001:db8::5]:443, [fd00::2]:8080', '2001:db8::5'],
    ['198.51.100.4, 10.0.0.2:8080, 10.0.0.3', '198.51.100.4']
  ]
  for (const [xff, client] of cases) t.equal((await send('/echo', xff)).seen?.['x-real-ip'], client, xff)
})

t.test('rate-limit by ip: two source ports of one client are one client', async t => {
  t.same([(await send('/v4', '203.0.113.7:51234')).status, (await send('/v4', '203.0.113.7:51235')).status], [200, 429], 'IPv4')
  t.equal((await send('/v4', '203.0.113.8:51234')).status, 200, 'another client')
  t.same([(await send('/v6', '[2001:db8::1]:50000')).status, (await send('/v6', '[2001:db8::1]:50001')).status], [200, 429], 'IPv6')
})

t.test('ip-filter deny matches an address sent with a port, and no longer refuses one it does not hold', async t => {
  const cases: Array<[string, number]> = [
    ['203.0.113.7:51234', 403], ['[2001:db8:bad::1]:443', 403], ['198.51.100.4:51234', 200], ['[2001:db8::1]:443', 200],
    ['198.51.100.4:1111, 203.0.113.7:2222', 403]
  ]
  for (const [xff, status] of cases) t.equal((await send('/deny', xff)).status, status, xff)
})

t.test('a request refused before routing logs the client without its port', async t => {
  t.equal((await send('/nowhere', '203.0.113.7:51234')).clientIp, '203.0.113.7')
})

t.test('plain addresses are as before; what is no address, port or not, is no client: the peer is', async t => {
  for (const xff of ['203.0.113.9', '2001:db8::1', '::ffff:203.0.113.9']) {
    const { seen, clientIp } = await send('/echo', xff)
    t.same([seen?.['x-real-ip'], clientIp, seen?.['x-forwarded-for']], [xff, xff, `${xff}, 127.0.0.1`], xff)
  }
  for (const xff of ['unknown', 'unknown:80', '203.0.113.9:http', '203.0.113.9:123456', '[2001:db8::1]:x', '[203.0.113.9]:80']) {
    const { seen, clientIp } = await send('/echo', xff)
    t.same([seen?.['x-real-ip'], clientIp, seen?.['x-forwarded-for']], ['127.0.0.1', '127.0.0.1', `${xff}, 127.0.0.1`], xff)
  }
  t.equal((await send('/deny', 'unknown:80')).status, 200, 'ip-filter judges the peer (test/forwarded-non-address.test.ts)')
})
