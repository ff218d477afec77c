import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { GatewayError, sendError } from '../errors.ts'
import { requestId } from '../proxy/request-id.ts'
import { hostOf } from '../routing/host-pattern.ts'
import { listenAs } from './listen-error.ts'

/**
 * The plain-HTTP listener of server.tls.redirectHttp: every request gets 308 to the same path and
 * query over HTTPS, at the Host header's name and `httpsPort()`. 308 keeps the method and body.
 * A missing, repeated or malformed Host, or a target that is not a path, gets 400 in JSON.
 */
export function createHttpsRedirect (httpsPort: () => number): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
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
