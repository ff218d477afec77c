import type { Server } from 'node:net'
import type { Socket } from 'node:net'

/**
 * Connections on which the client has sent nothing yet (a browser's preconnect, a load balancer's
 * TCP check). Node's server.close() leaves them open, not being idle in its sense: each would hold a
 * graceful stop until clientTimeouts.headers or the shutdown deadline. At a stop they are closed,
 * as idle keep-alive connections are. Over TLS the socket the HTTP parser reads is the one that
 * counts (its bytesRead is plaintext); one still in its handshake is closed if it has sent nothing.
 */
export class UnusedConnections {
  readonly #sockets = new Set<Socket>()

  constructor (server: Server, tls: boolean) {
    const track = (socket: Socket): void => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    }
    server.on('connection', track)
    if (tls) server.on('secureConnection', track)
  }

  /** Closes every connection that has not sent a byte. */
  close (): void {
    for (const socket of this.#sockets) if (socket.bytesRead === 0) socket.destroy()
  }
}
