import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { createTestCa, type TestCa } from './certs.ts'
import { startGateway, type TestGateway } from './gateway.ts'

export interface H2Gateway {
  readonly gw: TestGateway
  readonly ca: TestCa
  /** The config file, in the CA's directory (rewrite it and reload). */
  readonly file: string
  /** A new HTTP/2 connection to the TLS listener (closed at teardown). */
  connect (): Promise<ClientHttp2Session>
}

/**
 * A gateway with TLS (a throw-away CA's certificate for localhost and 127.0.0.1) and `http2`
 * (the server.http2 value, YAML flow); `rest` is the config after `server:`.
 */
export async function startH2Gateway (t: Test, http2: string, rest: string, serverExtra = ''): Promise<H2Gateway> {
  const ca = createTestCa('Portcullis H2 Test CA', fn => t.teardown(fn))
  ca.issue('server', 'DNS:localhost,IP:127.0.0.1')
  const file = join(ca.certFile, '..', 'gateway.yaml')
  writeFileSync(file, gatewayYaml(http2, rest, serverExtra))
  const gw = await startGateway(readFileSync(file, 'utf8'), { file })
  t.teardown(() => gw.close())
  return {
    gw,
    ca,
    file,
    connect: async () => {
      const session = await h2Connect(gw.url, { ca: ca.cert })
      t.teardown(() => session.destroy())
      return session
    }
  }
}

export function gatewayYaml (http2: string, rest: string, serverExtra = ''): string {
  return `server:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { certificates: [ { cert: server.pem, key: server.key } ] }
  http2: ${http2}
${serverExtra}${rest}`
}

/** An HTTP/2 session to `url` (https: TLS with ALPN h2; http: h2c prior knowledge), once connected. */
export async function h2Connect (url: string, options: { ca?: string } = {}): Promise<ClientHttp2Session> {
  const session = connect(url, { ca: options.ca })
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => { session.off('error', reject); resolve() })
    session.once('error', reject)
  })
  return session
}

export interface H2Response {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** One request on `session`: headers (`:path` at least), an optional body; the whole response. */
export async function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Response> {
  const stream = session.request(headers, { endStream: body === undefined })
  if (body !== undefined) stream.end(body)
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let head: IncomingHttpHeaders = {}
    stream.on('response', h => { head = h })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }))
    stream.on('error', reject)
  })
}

/** The JSON the echo upstream answers with (see helpers/upstream.ts). */
export interface Echoed { method: string, url: string, headers: Record<string, string>, body: string }
export const echoed = (r: H2Response): Echoed => JSON.parse(r.body.toString()) as Echoed
