import t, { type Test } from 'tap'
import { promises as dnsPromises, type LookupAllOptions, type SrvRecord } from 'node:dns'
import { createServer, type Server } from 'node:https'
import type { TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { createTestCa, type Issued } from '../helpers/certs.ts'

// SRV targets took the records' target names as their Host and TLS name: whoever could answer the SRV
// query (a spoofed answer) sent the traffic to a host of their choosing with a certificate for its own
// name, and the gateway accepted it. The name checked is the domain the service was looked up in.

/** An https server with `cert` on 127.0.0.1 that answers with the Host and SNI it got. */
async function httpsServer (t: Test, cert: Issued): Promise<number> {
  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    res.end(`host ${String(req.headers.host)} sni ${String((req.socket as TLSSocket & { servername?: string }).servername)}`)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return (server.address() as AddressInfo).port
}

/** The gateway's discovery gets `srv` for SRV names and 127.0.0.1 for the names in them (as tests fake DNS). */
function fakeDns (t: Test, srv: Record<string, SrvRecord[]>): void {
  const { lookup, resolveSrv } = dnsPromises
  dnsPromises.lookup = (async (host: string, options: LookupAllOptions) => host.endsWith('.test')
    ? [{ address: '127.0.0.1', family: 4 }]
    : await lookup(host, options)) as typeof lookup
  dnsPromises.resolveSrv = (async (name: string) => srv[name] ?? await resolveSrv(name)) as typeof resolveSrv
  t.teardown(() => { dnsPromises.lookup = lookup; dnsPromises.resolveSrv = resolveSrv })
}

t.test('an SRV target\'s certificate is checked against the service\'s domain, not the record\'s target name; the Host is that domain', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  // A spoofed answer sends api.test's service to attacker.test, whose certificate (from a CA the
  // gateway trusts) is valid for attacker.test only.
  const attacker = await httpsServer(t, ca.issue('attacker', 'DNS:attacker.test'))
  // The real service runs on hosts named after themselves, with a certificate for the service's domain.
  const genuine = await httpsServer(t, ca.issue('genuine', 'DNS:good.test'))
  const record = (name: string, port: number): SrvRecord => ({ name, port, priority: 10, weight: 1 })
  fakeDns(t, {
    '_https._tcp.api.test': [record('attacker.test', attacker)],
    '_https._tcp.good.test': [record('node-1.good.test', genuine)],
    '_https._tcp.ported.test': [record('node-1.ported.test', genuine)]
  })
  const gw = await startGateway(`
upstreams:
  spoofed:
    targets: [ { url: "https://_https._tcp.api.test", resolve: dns } ]
    tls: { ca: "${ca.certFile}" }
    retries: false
  genuine:
    targets: [ { url: "https://_https._tcp.good.test", resolve: dns } ]
    tls: { ca: "${ca.certFile}" }
  ported:
    targets: [ { url: "https://_https._tcp.ported.test:8443", resolve: dns } ]
    tls: { ca: "${ca.certFile}", servername: good.test }
routes:
  - { name: spoofed, match: { path: /s/* }, upstream: spoofed }
  - { name: genuine, match: { path: /g/* }, upstream: genuine }
  - { name: ported, match: { path: /p/* }, upstream: ported }
`)
  t.teardown(() => gw.close())
  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    return [res.statusCode, await res.body.text()]
  }

  const spoofed = await get('/s/x')
  t.equal(spoofed[0], 502, `the attacker's certificate is refused: ${String(spoofed[1])}`)
  t.match(gw.logs.find(l => l.msg?.toString().startsWith('upstream TLS')), { err: { code: 'ERR_TLS_CERT_ALTNAME_INVALID' } })

  t.same(await get('/g/x'), [200, 'host good.test sni good.test'], 'a certificate for the service\'s domain is accepted; Host and SNI are the domain')
  t.same(gw.gateway.runtime.upstreams.get('genuine')!.snapshot().targets.map(x => [x.url, x.host]), [[`https://127.0.0.1:${genuine}`, 'good.test']])
  // The URL's port is the Host's (a URL's port is what a client asked for; the records' are where to connect).
  t.same(await get('/p/x'), [200, 'host ported.test:8443 sni good.test'], 'the URL\'s port, not the record\'s, in the Host')
})
