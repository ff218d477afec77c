import type { IncomingMessage } from 'node:http'
import type { Server, Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** What Node's HTTP/1 server hangs on a connection's socket: its parser (with the request being read), and the response being written. */
interface Http1Socket extends Socket {
  parser?: { incoming?: IncomingMessage | null } | null
  _httpMessage?: unknown
}

/**
 * Connections with no request under way, on an HTTP/1.1 or an h2c listener: ones that have sent
 * nothing yet (a browser's preconnect, a load balancer's TCP check), ones that have sent only part
 * of a request head (a slow client, or a slowloris), and kept-alive ones between two requests. At a
 * stop they are closed at once; one whose request head is complete (its body under way, or its
 * response) is left to finish. Node's closeIdleConnections() closes only the last kind: it counts a
 * connection as busy from its first byte, or from its accept (for its headersTimeout), not from a
 * complete head; nor do HTTP/2 sessions close on GOAWAY before their preface. Each would hold a
 * graceful stop until clientTimeouts.headers or the shutdown deadline. Over TLS the socket the
 * HTTP parser reads is the one that counts; one still in its handshake is closed if it has sent nothing.
 */
export class UnusedConnections {
  readonly #sockets = new Set<Http1Socket>()

  readonly #track = (socket: Socket): void => {
    // Read while the socket is open (Node keeps it): a head left unfinished by a client gone (a TLS
    // socket is destroyed then) is logged with the address (the clientErrorHandler), once per connection.
    void socket.remoteAddress
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  /** Tracks the connections of a listener (and, over TLS, their decrypted side). */
  watch (server: Server, tls: boolean): void {
    server.on('connection', this.#track)
    if (tls) server.on('secureConnection', this.#track)
  }

  /** Closes every connection with no request under way. */
  close (): void {
    for (const socket of this.#sockets) if (unused(socket)) socket.destroy()
  }
}

/**
 * An HTTP/1 connection (one with Node's parser) is unused when no response is pending on it (Node
 * sets one as soon as a head is complete) and no request body is being read (one answered early,
 * its rest being discarded). One already ending is left to close (an answer of the gateway's may be
 * in its buffer). Any other (under TLS, an HTTP/2 session, a WebSocket) when it has sent nothing.
 */
function unused (socket: Http1Socket): boolean {
  if (socket.parser == null) return socket.bytesRead === 0
  return socket._httpMessage == null && !socket.writableEnded && bodyUnderWay(socket) === undefined
}

/** The request whose body Node's parser is reading on `socket`, if any. */
export function bodyUnderWay (socket: Duplex): IncomingMessage | undefined {
  const incoming = (socket as Http1Socket).parser?.incoming
  return incoming != null && !incoming.complete ? incoming : undefined
}
