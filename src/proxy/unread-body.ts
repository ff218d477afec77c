import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { destroyAfterLinger } from '../errors.ts'

/** The most of a request body left unread that is read and thrown away after the answer, to keep the connection. */
const DISCARD_MAX = 64 * 1024

const DISCARDED = Symbol('discarded')
type Discarding = IncomingMessage & { [DISCARDED]: number }

/**
 * An HTTP/1.1 request answered before its body is in (a plugin's 401, redirect, termination): Node
 * reads the rest and throws it away to keep the connection, however long it is. Kept only for a
 * rest of DISCARD_MAX at most: past a larger Content-Length the answer says `Connection: close`; a
 * chunked body's rest (its size unknown) is read up to DISCARD_MAX past the answer, then the
 * connection is ended. Call before the head is written.
 */
export function boundDiscard (req: IncomingMessage, socket: Socket, res: ServerResponse, received: number): void {
  // Node ends a connection whose answer says close with destroySoon(): at once, when a client still sending could miss the answer.
  // `socket` is the request's, kept: undici takes it off a request it was sent as a body (req.socket null).
  socket.destroySoon = lingerSoon
  const length = req.headers['content-length']
  if (length === undefined) res.prependOnceListener('finish', watchDiscard)
  else if (Number(length) - received > DISCARD_MAX) res.shouldKeepAlive = false
}

/**
 * Once the answer is out, the rest of the body is read here, counted, before Node's own discard
 * would take it (a dumped body is thrown away unseen): prepended to Node's own finish listener.
 */
function watchDiscard (this: ServerResponse): void {
  const req = this.req
  if (req.complete) return
  // Destroyed (undici's end of a body it was sending): its rest is never seen to be counted, the connection ends.
  if (req.destroyed) { lingerSoon.call(this.socket as Socket); return }
  ;(req as Discarding)[DISCARDED] = 0
  req.on('data', countDiscarded)
}

function countDiscarded (this: IncomingMessage, chunk: Buffer): void {
  if (((this as Discarding)[DISCARDED] += chunk.length) <= DISCARD_MAX) return
  this.off('data', countDiscarded)
  lingerSoon.call(this.socket)
}

/**
 * Ends the connection once what was written is sent, and destroys it after a linger: destroyed at
 * once, with the client's bytes unread, it would be reset, and an answer still queued in the kernel
 * lost. Meanwhile nothing more is read: a request sent behind the body is not served (RFC 9112 9.6),
 * and a client still sending no longer keeps the gateway reading.
 */
function lingerSoon (this: Socket): void {
  if (this.writableEnded) return // ended already: by countDiscarded, then by Node for an answer that said close
  // Node resumes the socket when the body it discards is read (IncomingMessage's _read): paused again at once.
  this.on('resume', stayPaused)
  this.pause()
  this.end()
  destroyAfterLinger(this)
}

/**
 * The client said its request was its last (`Connection: close`, or HTTP/1.0 without keep-alive),
 * then sent more (llhttp: "Data after Connection: close"): nothing more is read, the response under
 * way finishes, and Node's end of the connection then lingers (lingerSoon), so the answer is not lost.
 */
export function readNoMore (socket: Socket): void {
  socket.on('resume', stayPaused)
  socket.pause()
  socket.destroySoon = lingerSoon
}

/** A 'resume' listener keeping a socket paused: Node resumes reading of its own accord. */
export function stayPaused (this: Duplex): void {
  this.pause()
}
