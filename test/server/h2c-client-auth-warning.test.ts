import t from 'tap'
import { join } from 'node:path'
import { readFileSync, writeFileSync } from 'node:fs'
import { createTestCa } from '../helpers/certs.ts'
import { startGateway } from '../helpers/gateway.ts'
import { h2Connect, h2Request } from '../helpers/http2.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'

// server.tls.clientAuth (mTLS) is the TLS listener's handshake: the h2c listener, cleartext, takes
// requests with no client certificate at all. With mode require that is worth a warning at start,
// unless h2c listens on loopback only.

const ca = createTestCa('Portcullis h2c mTLS Test CA', fn => t.teardown(fn))
ca.issue('server', 'DNS:localhost,IP:127.0.0.1')
writeFileSync(join(ca.certFile, '..', 'clients.pem'), ca.cert)
const up = await startUpstream()
t.teardown(() => up.close())
const WARNING = 'server.tls.clientAuth requires a client certificate on the TLS listener only: the h2c listener (server.http2.h2c) serves requests without any'

async function gatewayWith (mode: string, h2cHost: string) {
  const file = join(ca.certFile, '..', 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { certificates: [ { cert: server.pem, key: server.key } ], clientAuth: { ca: clients.pem, mode: ${mode} } }
  http2: { h2c: { listen: { host: "${h2cHost}", port: 0 } } }
${catchAllYaml(up.url)}`)
  return await startGateway(readFileSync(file, 'utf8'), { file })
}

t.test('mode require, h2c on every address: a warning naming the h2c listener; it serves a client with no certificate', async t => {
  const gw = await gatewayWith('require', '0.0.0.0')
  t.teardown(() => gw.close())
  const line = gw.logs.find(l => l.msg === WARNING)
  t.match(line, { level: 40, h2c: gw.h2cUrl }, 'warned, with the h2c listener')
  const session = await h2Connect((gw.h2cUrl as string).replace('0.0.0.0', '127.0.0.1'))
  t.teardown(() => session.destroy())
  t.equal((await h2Request(session, { ':path': '/hello' })).status, 200, 'what the warning says')
})

for (const [mode, host] of [['require', '127.0.0.1'], ['require', 'localhost'], ['request', '0.0.0.0']] as const) {
  t.test(`mode ${mode}, h2c on ${host}: no warning`, async t => {
    const gw = await gatewayWith(mode, host)
    t.teardown(() => gw.close())
    t.ok(gw.logs.some(l => l.msg === 'gateway listening'), 'started')
    t.notOk(gw.logs.some(l => l.msg === WARNING), 'no warning')
  })
}
