import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { createTestCa, type Issued, type TestCa } from '../helpers/certs.ts'
import { until } from '../helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

/** An https upstream with `server`'s certificate that answers with the client certificate's CN it saw ("-" for none). */
async function httpsUpstream (t: Test, server: Issued, clientCa?: TestCa): Promise<string> {
  const https: Server = createServer({ cert: server.cert, key: server.key, ca: clientCa?.cert, requestCert: clientCa !== undefined, rejectUnauthorized: clientCa !== undefined }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    res.end(`hello over tls, client ${peer?.subject?.CN ?? '-'}`)
  })
  await new Promise<void>(resolve => https.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { https.closeAllConnections(); https.close(() => resolve()) }))
  return `https://127.0.0.1:${(https.address() as AddressInfo).port}`
}

async function gateway (t: Test, target: string, tls: string): Promise<TestGateway> {
  const gw = await startGateway(`
upstreams:
  secure:
    targets: [ { url: "${target}" } ]
    passive: false
    tls: ${tls}
routes:
  - name: all
    match: { path: /* }
    upstream: secure
`)
  t.teardown(() => gw.close())
  return gw
}

const get = async (gw: TestGateway) => {
  const res = await request(`${gw.url}/x`)
  return { status: res.statusCode, body: await res.body.text() }
}

t.test('https targets: a private CA trusted, others refused with 502 and a clear log line', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const other = createTestCa('Some Other CA', fn => t.teardown(fn))
  const url = await httpsUpstream(t, ca.issue('upstream', 'DNS:localhost,IP:127.0.0.1'))

  const trusted = await gateway(t, url, `{ ca: "${ca.certFile}" }`)
  t.same(await get(trusted), { status: 200, body: 'hello over tls, client -' })

  for (const [name, tls] of [['a wrong CA', `{ ca: "${other.certFile}" }`], ['the public CAs only', '{ servername: localhost }']] as const) {
    const gw = await gateway(t, url, tls)
    const res = await get(gw)
    t.equal(res.status, 502, `${name}: 502`)
    t.match(JSON.parse(res.body), { error: 'bad_gateway' }, `${name}: our error`)
    const line = gw.logs.find(l => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('upstream TLS handshake failed'))
    t.match(line, { err: { code: /CERT|SIGNATURE|SELF_SIGNED/ }, target: url }, `${name}: logged as a TLS failure with its code`)
  }
})

t.test('servername: the name checked against the certificate', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const url = await httpsUpstream(t, ca.issue('api', 'DNS:api.internal'))
  const byIp = await gateway(t, url, `{ ca: "${ca.certFile}" }`)
  t.equal((await get(byIp)).status, 502, 'the address is not in the certificate')
  t.match(byIp.logs.find(l => l.msg?.toString().startsWith('upstream TLS')), { err: { code: 'ERR_TLS_CERT_ALTNAME_INVALID' } })
  const byName = await gateway(t, url, `{ ca: "${ca.certFile}", servername: api.internal }`)
  t.same(await get(byName), { status: 200, body: 'hello over tls, client -' })
})

t.test('SNI is the target\'s name, never the client\'s Host: DNS-discovered targets, preserveHost, servername over a named target', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const issued = { localhost: ca.issue('local', 'DNS:localhost'), api: ca.issue('api', 'DNS:api.internal') }
  const servers: Record<string, { port: number, handshakes: string[] }> = {}
  for (const [name, cert] of Object.entries(issued)) {
    const handshakes: string[] = []
    const https: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => res.end(`sni ${String((req.socket as TLSSocket & { servername?: string }).servername)}`))
    https.on('secureConnection', (s: TLSSocket & { servername?: string }) => handshakes.push(String(s.servername)))
    await new Promise<void>(resolve => https.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>(resolve => { https.closeAllConnections(); https.close(() => resolve()) }))
    servers[name] = { port: (https.address() as AddressInfo).port, handshakes }
  }
  const local = servers.localhost as { port: number, handshakes: string[] }
  const api = servers.api as { port: number, handshakes: string[] }
  const gw = await startGateway(`
upstreams:
  discovered:
    targets: [ { url: "https://localhost:${local.port}", resolve: dns } ]
    tls: { ca: "${ca.certFile}" }
    connections: 1
    healthCheck: { path: /health, interval: 100ms }
  named:
    targets: [ { url: "https://localhost:${api.port}" } ]
    tls: { ca: "${ca.certFile}", servername: api.internal }
routes:
  - { name: discovered, match: { path: /d/* }, upstream: discovered, preserveHost: true }
  - { name: named, match: { path: /n/* }, upstream: named }
`)
  t.teardown(() => gw.close())
  for (let i = 0; i < 6; i++) {
    const res = await request(`${gw.url}/d/x`, { headers: { host: `public-${i % 2}.example.com` } })
    t.same([res.statusCode, await res.body.text()], [200, 'sni localhost'], 'a DNS-discovered target found by "localhost", the client\'s Host preserved')
  }
  t.ok(await until(() => local.handshakes.length >= 2), 'the health check connected too')
  t.ok(local.handshakes.every(n => n === 'localhost'), `every handshake named localhost: ${local.handshakes.join(', ')}`)
  t.ok(local.handshakes.length <= 3, `connections kept across clients' Hosts (${local.handshakes.length} handshakes: the traffic's one, the health check's)`)
  const named = await request(`${gw.url}/n/x`)
  t.same([named.statusCode, await named.body.text()], [200, 'sni api.internal'], 'servername over the target URL\'s own name')
})

t.test('an address target: no SNI and its certificate checked against the address, whatever the Host (preserveHost, hostHeader)', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const leaf = ca.issue('upstream', 'IP:127.0.0.1')
  const handshakes: string[] = []
  const https: Server = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => res.end(`host ${req.headers.host}`))
  https.on('secureConnection', (s: TLSSocket & { servername?: string | false }) => handshakes.push(String(s.servername)))
  await new Promise<void>(resolve => https.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { https.closeAllConnections(); https.close(() => resolve()) }))
  const url = `https://127.0.0.1:${(https.address() as AddressInfo).port}`
  const gw = await startGateway(`
upstreams:
  ip:
    targets: [ { url: "${url}" } ]
    tls: { ca: "${ca.certFile}" }
    connections: 1
    healthCheck: { path: /health, interval: 100ms }
routes:
  - { name: preserved, match: { path: /p/* }, upstream: ip, preserveHost: true }
  - { name: fixed, match: { path: /f/* }, upstream: ip, hostHeader: fixed.example.com }
`)
  t.teardown(() => gw.close())
  for (let i = 0; i < 6; i++) {
    const host = `public-${i % 2}.example.com`
    const res = await request(`${gw.url}/p/x`, { headers: { host } })
    t.same([res.statusCode, await res.body.text()], [200, `host ${host}`], 'the client\'s Host goes upstream, not into the TLS name')
  }
  const fixed = await request(`${gw.url}/f/x`)
  t.same([fixed.statusCode, await fixed.body.text()], [200, 'host fixed.example.com'], 'hostHeader')
  t.ok(await until(() => handshakes.length >= 2), 'the health check connected too')
  t.ok(handshakes.every(n => n === 'false'), `no handshake sent a name: ${handshakes.join(', ')}`)
  t.ok(handshakes.length <= 3, `connections kept across Hosts (${handshakes.length} handshakes)`)
  t.notOk(gw.logs.some(l => typeof l.msg === 'string' && l.msg.startsWith('upstream TLS')), 'no TLS failure')
})

t.test('mTLS to the upstream: the client certificate is presented', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const clients = createTestCa('Client CA', fn => t.teardown(fn))
  const client = clients.issue('portcullis-gateway', 'DNS:gateway', { client: true })
  const url = await httpsUpstream(t, ca.issue('upstream', 'IP:127.0.0.1'), clients)
  const withCert = await gateway(t, url, `{ ca: "${ca.certFile}", cert: "${client.certFile}", key: "${client.keyFile}" }`)
  t.same(await get(withCert), { status: 200, body: 'hello over tls, client portcullis-gateway' })
  const without = await gateway(t, url, `{ ca: "${ca.certFile}" }`)
  t.equal((await get(without)).status, 502, 'refused by the upstream without one')
})

t.test('rejectUnauthorized: false connects to anything, with a warning at load', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const url = await httpsUpstream(t, ca.issue('upstream', 'DNS:elsewhere'))
  const gw = await gateway(t, url, '{ rejectUnauthorized: false }')
  t.equal((await get(gw)).status, 200)
  t.match(gw.logs.find(l => l.level === 40 && l.upstream === 'secure'), { msg: /not verified \(tls\.rejectUnauthorized: false\)/ })
})

t.test('health checks trust what the traffic trusts', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const url = await httpsUpstream(t, ca.issue('upstream', 'IP:127.0.0.1'))
  const wrongName = await httpsUpstream(t, ca.issue('elsewhere', 'DNS:elsewhere'))
  const gw = await startGateway(`
upstreams:
  secure:
    targets: [ { url: "${url}" }, { url: "https://127.0.0.1:1" }, { url: "${wrongName}" } ]
    tls: { ca: "${ca.certFile}" }
    healthCheck: { path: /health, interval: 2s, timeout: 1s, unhealthyAfter: 1, healthyAfter: 1 }
routes:
  - name: all
    match: { path: /* }
    upstream: secure
`)
  // The first round of checks runs at start. The timeout is long enough for a TLS handshake on a busy machine:
  // with 50 ms, a slow handshake could fail the good target's check, or time out the wrong name's before it failed.
  t.teardown(() => gw.close())
  const health = () => gw.gateway.runtime.upstreamSnapshots()[0]?.targets.map(x => [x.url, x.healthy])
  t.ok(await until(() => health()?.[1]?.[1] === false && health()?.[2]?.[1] === false), 'the unreachable target and the one with a wrong name are found out')
  t.same(health(), [[url, true], ['https://127.0.0.1:1', false], [wrongName, false]], 'the TLS target passes its checks')
  const reasons = Object.fromEntries(gw.logs.filter(l => l.msg === 'target unhealthy').map(l => [l.target, l.reason]))
  t.match(reasons, { 'https://127.0.0.1:1': /^ECONNREFUSED: /, [wrongName]: /^ERR_TLS_CERT_ALTNAME_INVALID: / }, 'logged with why')
})

t.test('unreadable and mismatched PEM files are config errors at their key', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const a = ca.issue('a', 'DNS:a', { client: true })
  const b = ca.issue('b', 'DNS:b', { client: true })
  const config = (tls: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  secure:
    targets: [ { url: "https://127.0.0.1:8443" } ]
    tls: ${tls}
routes:
  - name: all
    match: { path: /* }
    upstream: secure
`
  const issues = async (tls: string) => {
    try {
      await parseConfig(config(tls), join(ca.certFile, '..', 'gw.yaml'), {})
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(formatIssue)
      throw err
    }
    return ['accepted']
  }
  t.match(await issues('{ ca: missing.pem }'), [/gw\.yaml:6:\d+ upstreams\.secure\.tls\.ca: cannot read "missing\.pem": ENOENT/])
  t.match(await issues(`{ cert: "${a.certFile}", key: "${b.keyFile}" }`), [/gw\.yaml:6:\d+ upstreams\.secure\.tls\.key: does not fit the certificate: .*key values mismatch/])
  t.match(await issues(`{ cert: "${a.certFile}" }`), [/upstreams\.secure\.tls\.cert: a client certificate needs both cert and key/])
  // A CA file must be PEM certificates: OpenSSL would take any file, and every target would fail its handshake.
  writeFileSync(join(ca.certFile, '..', 'empty.pem'), '')
  writeFileSync(join(ca.certFile, '..', 'hello.pem'), 'hello world')
  t.match(await issues('{ ca: empty.pem }'), [/gw\.yaml:6:\d+ upstreams\.secure\.tls\.ca: not a PEM CA file: no certificate in it/])
  t.match(await issues('{ ca: hello.pem }'), [/upstreams\.secure\.tls\.ca: not a PEM CA file: no certificate in it/])
  t.match(await issues(`{ ca: "${a.keyFile}" }`), [/upstreams\.secure\.tls\.ca: not a PEM CA file: .*PRIVATE KEY/])
  // Relative to the config file.
  t.same(await issues('{ ca: ca.pem, cert: a.pem, key: a.key }'), ['accepted'])
})

t.test('a request whose client left while the TLS handshake to its target was under way is never sent', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const leaf = ca.issue('upstream', 'DNS:localhost,IP:127.0.0.1')
  const seen: string[] = []
  const https: Server = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => { seen.push(req.url as string); res.end('ok') })
  // In front of it: the first connection waits (its ClientHello unanswered) until the test lets it through.
  const held: Socket[] = []
  const front = createTcpServer(socket => { if (held.length === 0) held.push(socket); else https.emit('connection', socket) })
  await new Promise<void>(resolve => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of held) s.destroy(); https.closeAllConnections(); front.close(() => resolve()) }))
  // A plugin that reports how each try ended, as a tracing plugin would.
  const ends = sharedWithPlugins<string[]>('tryEnds', [])
  const dir = t.testdir({})
  writeUserPlugin(dir, 'observer', 10, "{ onUpstreamTryEnd (req: any, _status: unknown, error: Error | undefined) { shared('tryEnds').push(req.path + ' ' + (error?.message ?? '-')) } }")
  const gw = await startGateway(`loadPlugins: [ ./observer.ts ]
upstreams:
  secure:
    targets: [ { url: "https://127.0.0.1:${(front.address() as AddressInfo).port}" } ]
    passive: false
    tls: { ca: "${ca.certFile}" }
routes:
  - { name: all, match: { path: /* }, upstream: secure, plugins: { observer: {} } }
`, { file: join(dir, 'gw.yaml') })
  t.teardown(() => gw.close())
  const controller = new AbortController()
  const left = request(`${gw.url}/left`, { signal: controller.signal }).catch(() => undefined)
  t.ok(await until(() => held.length === 1), 'the handshake is under way')
  controller.abort()
  await left
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/left' && l.status === 499)), 'the client left')
  https.emit('connection', held[0])
  t.same(await get(gw), { status: 200, body: 'ok' }, 'the next request is served')
  t.same(seen, ['/x'], 'the one whose client left never reached the target')
  t.same(ends, ['/left request ended before it was sent', '/x -'], 'observers see why that try ended')
})
