import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { destroyAfterLinger } from '../../errors.ts'

/**
 * An answer made before its request's body is in (a refusal, a probe ignoring the body) ends the
 * connection. Nothing more is read until it is out: the rest of the body, or requests sent behind
 * it, would be parsed for nothing. Once it is (our FIN sent too), what the client still sends is
 * read and dropped, so that its close is seen and the connection released at once; a client that
 * keeps its side open is cut after the linger (errors.ts). Left paused, every such connection was
 * held the whole linger for a close never read: a burst of 503 or 429 refusals to clients still
 * sending a body kept the listener at maxConnections for 2 s. Call before the answer is sent
 * (again, for a request pipelined behind: no effect).
 */
export function endAfterAnswer (socket: Socket): void {
  if (socket.destroySoon === endThenLinger) return
  socket.on('resume', stayPaused)
  socket.pause()
  // Node ends a connection whose last answer is out with destroySoon(): at once, when a client still sending could miss the answer.
  socket.destroySoon = endThenLinger
}

function endThenLinger (this: Socket): void {
  if (this.writableEnded) return
  this.end(() => {
    this.off('resume', stayPaused)
    this.resume()
  })
  destroyAfterLinger(this)
}

/** A 'resume' listener keeping a socket paused: Node resumes reading of its own accord (to discard a body). */
function stayPaused (this: Duplex): void {
  this.pause()
}
