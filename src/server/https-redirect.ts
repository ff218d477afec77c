import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { GatewayConfig } from '../config/schema.ts'
import { answerOnSocket, errorBody, GatewayError, sendError } from '../errors.ts'
import { requestId } from '../proxy/request-id.ts'
import { readNoMore } from '../proxy/unread-body.ts'
import { hostOf } from '../routing/host-pattern.ts'
import { clientTimeouts } from './client-timeouts.ts'
import { httpOptions, keepAliveMs } from './gateway-server.ts'
import { listenAs } from './listen-error.ts'

/**
 * The plain-HTTP listener of server.tls.redirectHttp: every request gets 308 to the same path and
 * query over HTTPS, at the Host header's name and `httpsPort()`. 308 keeps the method and body.
 * A missing, repeated or malformed Host, or a target that is not a path, gets 400 in JSON; CONNECT 501.
 * Bounded as the main listener (`server()`: the settings in service): the time to send a head,
 * idle connections (keepAliveTimeout); server.maxConnections is the caller's to apply.
 */
export function createHttpsRedirect (httpsPort: () => number, server: () => GatewayConfig['server']): Server {
  const redirect = createServer(httpOptions(server()), (req: IncomingMessage, res: ServerResponse) => {
    // A body is never read: the connection closes after the answer (Node would read and discard it all).
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) { readNoMore(req.socket); res.shouldKeepAlive = false }
    const hosts = req.headersDistinct.host
    const host = hosts?.length === 1 ? hostOf(hosts[0] as string) : undefined
    if (host === undefined || req.url?.startsWith('/') !== true) {
      sendError(res, host === undefined ? GatewayError.BAD_HOST : GatewayError.BAD_REQUEST, requestId(req.headers['x-request-id']))
      return
    }
    const port = httpsPort()
    res.writeHead(308, { location: `https://${host}${port === 443 ? '' : `:${port}`}${req.url}`, 'content-length': 0 })
    res.end()
  })
  // The timeouts of the config in service (a reload's too), from each new connection on.
  redirect.on('connection', () => Object.assign(redirect, { headersTimeout: clientTimeouts(server()).headers, keepAliveTimeout: keepAliveMs(server()) }))
  // The body is not wanted: no 100 Continue invites it (Node would send one).
  redirect.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => redirect.emit('request', req, res))
  // Not a tunnel either: answered, not dropped.
  redirect.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const id = requestId(req.headers['x-request-id'])
    answerOnSocket(socket, {}, GatewayError.CONNECT_REFUSED.status, errorBody(GatewayError.CONNECT_REFUSED, id), `x-request-id: ${id}\r\n`)
  })
  return redirect
}

/** Starts the redirect listener; resolves with its address. */
export async function listenRedirect (server: Server, host: string, port: number): Promise<AddressInfo> {
  await listenAs('server.tls.redirectHttp.listen', host, port, () => new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  }))
  return server.address() as AddressInfo
}

/** Stops it at once: a redirect is answered in one go, nothing to drain. */
export async function closeRedirect (server: Server): Promise<void> {
  const closed = new Promise<void>(resolve => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}
