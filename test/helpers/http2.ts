import { connect, type ClientHttp2Session, type SecureClientSessionOptions, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
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
  /** A new HTTP/2 connection to the TLS listener, or with `h2c` to the h2c one (closed at teardown). */
  connect (options?: { maxOutstandingSettings?: number, h2c?: boolean }): Promise<ClientHttp2Session>
}

/**
 * A gateway with TLS (a throw-away CA's certificate for localhost and 127.0.0.1) and `http2`
 * (the server.http2 value, YAML flow); `rest` is the config after `server:`, `options.server`
 * more lines of it (indented).
 */
export async function startH2Gateway (t: Test, http2: string, rest: string, options: { server?: string, admin?: boolean } = {}): Promise<H2Gateway> {
  const ca = createTestCa('Portcullis H2 Test CA', fn => t.teardown(fn))
  ca.issue('server', 'DNS:localhost,IP:127.0.0.1')
  const file = join(ca.certFile, '..', 'gateway.yaml')
  writeFileSync(file, gatewayYaml(http2, rest, options.server))
  const gw = await startGateway(readFileSync(file, 'utf8'), { file, admin: options.admin })
  t.teardown(() => gw.close())
  return {
    gw,
    ca,
    file,
    connect: async (options = {}) => {
      const session = await h2Connect(options.h2c === true ? gw.h2cUrl as string : gw.url, { ca: ca.cert, ...options })
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
export async function h2Connect (url: string, options: { ca?: string, maxOutstandingSettings?: number } = {}): Promise<ClientHttp2Session> {
  // maxOutstandingSettings (SETTINGS not yet acknowledged; Node's default 10) is missing from @types/node.
  const session = connect(url, { ca: options.ca, maxOutstandingSettings: options.maxOutstandingSettings } as SecureClientSessionOptions)
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

/** An HTTP/2 frame as raw bytes (RFC 9113 4.1), for clients that send what Node's client would not. */
export function frame (type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}
