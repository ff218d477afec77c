import type { Server, Socket } from 'node:net'

/**
 * Connections on which the client has sent nothing yet (a browser's preconnect, a load balancer's
 * TCP check), on an HTTP/1.1 or an h2c listener. Node's server.close() leaves them open, not
 * being idle in its sense (nor do HTTP/2 sessions close on GOAWAY before their preface): each would hold a
 * graceful stop until clientTimeouts.headers or the shutdown deadline. At a stop they are closed,
 * as idle keep-alive connections are. Over TLS the socket the HTTP parser reads is the one that
 * counts (its bytesRead is plaintext); one still in its handshake is closed if it has sent nothing.
 */
export class UnusedConnections {
  readonly #sockets = new Set<Socket>()

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

  /** Closes every connection that has not sent a byte. */
  close (): void {
    for (const socket of this.#sockets) if (socket.bytesRead === 0) socket.destroy()
  }
}
