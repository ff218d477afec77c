import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * The Allow of the 405 for TRACE (RFC 9110 15.5.6: a 405 must have one), which only a route without
 * match.methods refuses: every other method goes through; these are the common ones (docs/edge.md).
 */
const ALLOWED_BUT_TRACE = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

/** Responses the gateway itself produces, each with a stable code clients can rely on. */
export const GatewayError = {
  BAD_REQUEST: { status: 400, code: 'bad_request', message: 'the request is malformed' },
  HEADERS_TOO_LARGE: { status: 431, code: 'headers_too_large', message: 'the request headers are too large' },
  HEADERS_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request headers took too long to arrive' },
  /** A body that stalled: past the admin listener's whole-request limit, or a route's request timeout, with the head complete. */
  BODY_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request body did not arrive in time' },
  BAD_HOST: { status: 400, code: 'bad_host', message: 'the Host header (or the target\'s authority) is missing, repeated or not a host name with an optional port' },
  BAD_PATH: { status: 400, code: 'bad_path', message: 'the request target is neither a path nor an http(s) URL (ftp://, *), or its path contains an encoded slash or backslash, NUL, a semicolon, a malformed escape, or escapes that do not decode as UTF-8' },
  BAD_BODY: { status: 400, code: 'bad_body', message: 'the request body could not be read as sent (say, a bad Content-Encoding)' },
  NO_ROUTE: { status: 404, code: 'no_route', message: 'no route matches this request' },
  WEBSOCKET_DISABLED: { status: 400, code: 'websocket_disabled', message: 'this route does not accept WebSocket upgrades' },
  UPGRADE_REFUSED: { status: 400, code: 'upgrade_refused', message: 'this route does not accept an upgrade to this protocol (h2c never; none over HTTP/1.0)' },
  METHOD_NOT_ALLOWED: { status: 405, code: 'method_not_allowed', message: 'this route does not accept this method (TRACE only where the route\'s methods name it)', allow: ALLOWED_BUT_TRACE },
  /** Sent with the Allow of the routes for the request's host and path (sendError's `allow`). */
  METHOD_NOT_ROUTED: { status: 405, code: 'method_not_allowed', message: 'no route takes this method for this path: Allow lists the methods routes take for it' },
  EXPECTATION_FAILED: { status: 417, code: 'expectation_failed', message: 'the request\'s Expect names an expectation other than 100-continue' },
  CONNECT_REFUSED: { status: 501, code: 'not_implemented', message: 'the gateway does not open CONNECT tunnels' },
  TRANSFER_CODING: { status: 501, code: 'unsupported_transfer_coding', message: 'the request uses a transfer coding the gateway does not implement (only chunked)' },
  INTERNAL: { status: 500, code: 'internal_error', message: 'the gateway failed while handling the request' },
  PLUGIN_FAILED: { status: 500, code: 'plugin_error', message: 'a plugin failed while handling the request' },
  UPSTREAM_UNREACHABLE: { status: 502, code: 'bad_gateway', message: 'the upstream could not be reached or broke the connection' },
  UPSTREAM_BODY_INVALID: { status: 502, code: 'bad_gateway', message: 'the upstream\'s response body could not be read as sent (say, a corrupt Content-Encoding)' },
  UPSTREAM_HEADERS_INVALID: { status: 502, code: 'bad_gateway', message: 'the upstream\'s response head could not be passed on (say, a field that may appear once repeated with another value)' },
  UPSTREAM_BAD_UPGRADE: { status: 502, code: 'bad_gateway', message: 'the upstream switched to a protocol the client did not offer' },
  /** An HTTP/1.1 request pipelined past 16 waiting their turn on its connection (MAX_WAITING, gateway-server.ts). */
  PIPELINED_TOO_DEEP: { status: 429, code: 'too_many_requests', message: 'more than 16 requests pipelined on this connection wait their turn: this one and those sent after it are not run; the connection closes' },
  SHUTTING_DOWN: { status: 503, code: 'shutting_down', message: 'the gateway is shutting down' },
  UPSTREAM_BUSY: { status: 503, code: 'upstream_busy', message: 'every connection to the upstream is busy and its queue is full or too slow', retryAfter: '1' },
  /** Over HTTP/2: the connection's other streamed uploads held its every upload slot (server.http2.maxStreamingUploads) past the upstream's queue.timeout. */
  UPLOAD_SLOTS_BUSY: { status: 503, code: 'upload_slots_busy', message: 'too many of this HTTP/2 connection\'s requests are still sending their bodies: this one waited too long for one of them to end (send fewer at once, or over another connection)', retryAfter: '1' },
  // Retry-After: clients and SDKs that back off on it do (a breaker's half-open wait, a health check's interval: seconds).
  NO_HEALTHY_TARGET: { status: 503, code: 'no_healthy_target', message: 'no target of the upstream is available', retryAfter: '5' },
  UPSTREAM_TIMEOUT: { status: 504, code: 'gateway_timeout', message: 'the upstream did not answer in time' },
  PLUGIN_TIMEOUT: { status: 504, code: 'gateway_timeout', message: 'a plugin did not finish in time (the route\'s request timeout, or server.pluginTimeout)' },
  HTTP_VERSION_NOT_SUPPORTED: { status: 505, code: 'http_version_not_supported', message: 'the request\'s HTTP version is not supported on this connection (HTTP/1.0 and HTTP/1.1; HTTP/2 by ALPN or h2c)' }
} as const

export type GatewayErrorKind = typeof GatewayError[keyof typeof GatewayError]

/** The JSON body every gateway error carries. */
export function errorBody (error: GatewayErrorKind, requestId: string): string {
  return JSON.stringify({ error: error.code, message: error.message, requestId })
}

/** What a request Node's HTTP parser refused (its clientError) is answered with. */
export function parserError (err: { code?: string }): GatewayErrorKind {
  return err.code === 'HPE_HEADER_OVERFLOW' ? GatewayError.HEADERS_TOO_LARGE : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? GatewayError.HEADERS_TIMEOUT : GatewayError.BAD_REQUEST
}

/** How long a connection answered by answerOnSocket may linger, half-closed, before it is destroyed. */
const LINGER_MS = 2_000
const destroy = (connection: Connection) => connection.destroy()

/**
 * Answers, on the socket itself, a request Node's HTTP parser refused (no request or reply object
 * exists), and ends the connection: the parser cannot tell where a next request would start.
 * Ended, not destroyed, so the client reads the answer even if it has not finished sending; then
 * destroyed after LINGER_MS, so that a client that never closes its side does not keep the socket.
 * Returns false when nothing could be said: a reset connection, or a response already begun on it.
 */
export function answerOnSocket (socket: Duplex, err: { code?: string }, status: number, body: string, headers = ''): boolean {
  const answering = (socket as { _httpMessage?: { headersSent: boolean } })._httpMessage?.headersSent === true
  if (err.code === 'ECONNRESET' || !socket.writable || answering) { socket.destroy(); return false }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n${headers}connection: close\r\n\r\n${body}`)
  destroyAfterLinger(socket)
  return true
}

/** A connection (a socket, an HTTP/2 session) the gateway has ended or is ending. */
interface Connection { destroy (): void, once (event: 'close', listener: () => void): unknown }

/**
 * A connection the gateway has ended: destroyed after LINGER_MS, so that a client that never closes
 * its side does not keep it. One closed sooner is not held by the timer.
 */
export function destroyAfterLinger (connection: Connection): void {
  const timer = setTimeout(destroy, LINGER_MS, connection).unref()
  connection.once('close', () => clearTimeout(timer))
}

/** A gateway error as a reply that goes through the plugins' response hooks (CORS headers added to it). */
export function errorReply (error: GatewayErrorKind, requestId: string): { status: number, headers: Record<string, string>, body: string } {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
  if ('retryAfter' in error) headers['retry-after'] = error.retryAfter
  return { status: error.status, headers, body: errorBody(error, requestId) }
}

/**
 * Writes a gateway error as the whole response; returns the body's length in bytes (for the access
 * log). `close`: the connection ends after it (a request whose framing cannot be trusted: where the
 * next request would begin is unknown). `allow`: the Allow of a 405 whose error names none.
 */
export function sendError (res: ServerResponse, error: GatewayErrorKind, requestId: string, close = false, allow?: string): number {
  const body = errorBody(error, requestId)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId
  }
  if (close) headers.connection = 'close'
  if ('allow' in error) headers.allow = error.allow
  else if (allow !== undefined) headers.allow = allow
  if ('retryAfter' in error) headers['retry-after'] = error.retryAfter
  res.writeHead(error.status, headers)
  res.end(body)
  return headers['content-length'] as number
}
