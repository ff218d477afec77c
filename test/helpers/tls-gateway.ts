import type { Test } from 'tap'
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGateway, type TestGateway } from './gateway.ts'
import { startUpstream } from './upstream.ts'
import { createTestCa, type Issued, type TestCa } from './certs.ts'

const INDEX = fileURLToPath(new URL('../../src/index.ts', import.meta.url))

/** A TLS connection to the gateway, and the CN of the certificate it presented. */
export async function handshake (gw: { readonly url: string }, ca: TestCa, servername?: string, options: ConnectionOptions = {}): Promise<{ cn: string, socket: TLSSocket }> {
  const { port } = new URL(gw.url)
  const socket = connect({ host: '127.0.0.1', port: Number(port), ca: ca.cert, servername, rejectUnauthorized: false, ...options })
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  return { cn: socket.getPeerCertificate().subject.CN as string, socket }
}

/** The certificate's CN the gateway presents for SNI `servername` (undefined: no SNI). */
export async function presented (gw: { readonly url: string }, ca: TestCa, servername?: string): Promise<string> {
  const { cn, socket } = await handshake(gw, ca, servername)
  socket.destroy()
  return cn
}

/** Writes the gateway's config (and a plugin that shows the client certificate) in the CA's directory. */
function writeConfig (dir: string, upstream: string, tls: string): string {
  writeFileSync(join(dir, 'show-cert.mts'), `
import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'show-cert', priority: 100, schema: Type.Object({}),
  setup: () => ({ onRequest: req => { req.headers['x-client-cn'] = String(req.clientCertificate?.subject.CN ?? '-') } })
})
`)
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  tls: ${tls}
loadPlugins: [ show-cert.mts ]
plugins: { show-cert: {} }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - name: all
    match: { path: /* }
    upstream: up
`)
  return file
}

/** A gateway with `server.tls: <tls>` (files relative to the CA's directory) in front of an echo upstream. */
export async function tlsGateway (t: Test, ca: TestCa, tls: string, options: { watch?: boolean } = {}): Promise<{ gw: TestGateway, file: string }> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const file = writeConfig(join(ca.certFile, '..'), up.url, tls)
  const gw = await startGateway(readFileSync(file, 'utf8'), { file, watch: options.watch })
  t.teardown(() => gw.close())
  return { gw, file }
}

/**
 * A throw-away CA with two certificates for api.example.com, CN "first" and "second", and the
 * files live.pem and live.key (in the CA's directory) holding the first; `install` copies one over
 * them, the certificate then the key, as a renewal would.
 */
export function liveCertificate (t: Test): { ca: TestCa, dir: string, first: Issued, second: Issued, install (c: Issued): void } {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const first = ca.issue('first', 'DNS:api.example.com')
  const second = ca.issue('second', 'DNS:api.example.com')
  const dir = join(ca.certFile, '..')
  const install = (c: Issued) => {
    copyFileSync(c.certFile, join(dir, 'live.pem'))
    copyFileSync(c.keyFile, join(dir, 'live.key'))
  }
  install(first)
  return { ca, dir, first, second, install }
}
