import t from 'tap'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { connect as h2Connect } from 'node:http2'
import { connect as tlsConnect } from 'node:tls'
import { createTestCa } from './helpers/certs.ts'
import { startGateway } from './helpers/gateway.ts'
import { h2Request } from './helpers/http2.ts'
import { startUpstream } from './helpers/upstream.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'
import { until } from './helpers/wait.ts'

// req.clientCertificate read in onFinished: over HTTP/2 the stream is closed by then (req.socket no
// longer reaches the connection: it was undefined for every request); over HTTP/1.1 after the client
// left (499) the socket is gone (getPeerCertificate() null: the getter threw). It is the client's
// verified certificate for the whole life of the request.
const finished = sharedWithPlugins<string[]>('finished', [])
const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
const clients = createTestCa('Client CA', fn => t.teardown(fn))
ca.issue('server', 'DNS:localhost,IP:127.0.0.1')
const billing = clients.issue('billing', 'DNS:billing', { client: true })
const dir = join(ca.certFile, '..')
copyFileSync(clients.certFile, join(dir, 'clients.pem'))
writeUserPlugin(dir, 'cert-late', 100, `{
  onFinished: (req, status) => {
    let cn
    try { cn = String(req.clientCertificate?.subject.CN ?? '-') } catch (err) { cn = 'threw: ' + (err as Error).message }
    shared('finished').push(req.path + ' ' + status + ' ' + cn)
  }
}`)

let arrived = 0
const up = await startUpstream((req, res) => {
  if (req.url === '/held') arrived++ // never answered: its client leaves
  else res.end('ok')
})
t.teardown(() => up.close())
const file = join(dir, 'gateway.yaml')
writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { certificates: [ { cert: server.pem, key: server.key } ], clientAuth: { ca: clients.pem, mode: request } }
  http2: true
loadPlugins: [ ./cert-late.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: { cert-late: {} } }
`)
const gw = await startGateway(readFileSync(file, 'utf8'), { file })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** The line onFinished wrote for `path`, once it has. */
async function finishedFor (path: string): Promise<string | undefined> {
  await until(() => finished.some(l => l.startsWith(path + ' ')))
  return finished.find(l => l.startsWith(path + ' '))
}

t.test('HTTP/2: onFinished sees the client certificate, request after request on the session', async t => {
  const session = h2Connect(gw.url, { ca: ca.cert, cert: billing.cert, key: billing.key })
  t.teardown(() => session.destroy())
  await once(session, 'connect')
  for (const path of ['/h2-a', '/h2-b']) {
    t.equal((await h2Request(session, { ':path': path })).status, 200)
    t.equal(await finishedFor(path), `${path} 200 billing`)
  }
  const anonymous = h2Connect(gw.url, { ca: ca.cert })
  t.teardown(() => anonymous.destroy())
  await once(anonymous, 'connect')
  t.equal((await h2Request(anonymous, { ':path': '/h2-none' })).status, 200)
  t.equal(await finishedFor('/h2-none'), '/h2-none 200 -', 'none without a certificate')
})

t.test('HTTP/1.1: onFinished sees it, also once the client has left (499)', async t => {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'localhost', cert: billing.cert, key: billing.key, ALPNProtocols: ['http/1.1'] })
  t.teardown(() => socket.destroy())
  await once(socket, 'secureConnect')
  socket.write('GET /h1 HTTP/1.1\r\nHost: localhost\r\n\r\n')
  t.equal(await finishedFor('/h1'), '/h1 200 billing')
  socket.write('GET /held HTTP/1.1\r\nHost: localhost\r\n\r\n')
  t.ok(await until(() => arrived === 1), 'the request reached the upstream')
  socket.destroy()
  t.equal(await finishedFor('/held'), '/held 499 billing', 'the client gone: still its certificate, no throw')
})
