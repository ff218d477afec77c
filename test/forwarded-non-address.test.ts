import t from 'tap'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'

// An X-Forwarded-For entry that is no IP address is no client: the walk stops there and the client
// is the hop that named it. Taken as sent, a 7 KB entry was the clientIp of every access line,
// X-Real-IP upstream and a fresh rate-limit key per text.

const up = await startUpstream()
t.teardown(() => up.close())

const routes = `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: echo, match: { path: /echo }, upstream: up }
  - name: internal
    match: { path: /internal }
    upstream: up
    plugins: { ip-filter: { allow: [ 203.0.113.0/24 ] } }
  - name: limited
    match: { path: /limited }
    upstream: up
    plugins: { rate-limit: { by: [ ip ], limits: [ { name: per-ip, requests: 1, window: 1h } ] } }
`
const anyone = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: true
${routes}`)
t.teardown(() => anyone.close())
const listed = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: [ 127.0.0.1, 10.0.0.0/8 ]
${routes}`)
t.teardown(() => listed.close())

const LONG = `"\\<script>${'Z'.repeat(7000)}`
let ids = 0
/** One request from the loopback peer naming `forwardedFor`: its status, the X-Real-IP the upstream saw, the access line's clientIp. */
async function send (gw: typeof anyone, path: string, forwardedFor: string) {
  const id = `na-${++ids}`
  const res = await request(`${gw.url}${path}`, { headers: { 'x-forwarded-for': forwardedFor, 'x-request-id': id } })
  const body = await res.body.text()
  const line = await waitForLog(gw.logs, { requestId: id })
  const realIp = res.statusCode === 200 ? (JSON.parse(body) as { headers: Record<string, string> }).headers['x-real-ip'] : undefined
  return { status: res.statusCode, realIp, clientIp: line?.clientIp, line }
}

t.test('trustProxy true: a 7 KB entry is not the client, the peer is (access line, rejected line, X-Real-IP)', async t => {
  const { realIp, clientIp, line } = await send(anyone, '/echo', LONG)
  t.equal(clientIp, '127.0.0.1')
  t.equal(realIp, '127.0.0.1')
  t.ok(JSON.stringify(line).length < 1000, 'the line stays short')
  t.equal((await send(anyone, '/nowhere', LONG)).clientIp, '127.0.0.1', 'request rejected (no route)')
})

t.test('the walk stops at an entry that is no address: the client is the hop after it', async t => {
  const cases: Array<[typeof anyone, string, string]> = [
    [anyone, '198.51.100.1, garbage, 198.51.100.2', '198.51.100.2'],
    [anyone, 'unknown', '127.0.0.1'],
    [anyone, `fe80::1%${'Z'.repeat(3000)}`, '127.0.0.1'],
    [anyone, 'fe80::1%eth0, 198.51.100.3', '198.51.100.3'],
    [listed, 'garbage, 10.0.0.2', '10.0.0.2'],
    [listed, '203.0.113.7, unknown:80', '127.0.0.1'],
    [listed, '[not-an-address]:80, 10.0.0.2:8080', '10.0.0.2'],
    [listed, '203.0.113.7:51234, 10.0.0.2', '203.0.113.7']
  ]
  for (const [gw, xff, client] of cases) {
    const { realIp, clientIp } = await send(gw, '/echo', xff)
    t.same([clientIp, realIp], [client, client], xff.slice(0, 40))
  }
})

t.test('ip-filter and rate-limit judge that hop too', async t => {
  t.equal((await send(listed, '/internal', 'garbage, 203.0.113.7')).status, 200, 'an allowed address before the garbage is never read')
  t.equal((await send(listed, '/internal', '203.0.113.7, garbage')).status, 403, 'the hop that sent the garbage is not allowed')
  // One key per text let any client of trustProxy true count from zero on each request.
  t.same([(await send(anyone, '/limited', 'text-1')).status, (await send(anyone, '/limited', 'text-2')).status], [200, 429])
})
