import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { destroyAfterLinger } from '../errors.ts'

/** The most of a request body left unread that is read and thrown away after the answer, to keep the connection. */
const DISCARD_MAX = 64 * 1024

const DISCARDED = Symbol('discarded')
const SOCKET = Symbol('socket')
const DEADLINE = Symbol('deadline')
const TIMER = Symbol('timer')
type Discarding = IncomingMessage & { [DISCARDED]: number, [SOCKET]: Socket, [DEADLINE]: number, [TIMER]?: NodeJS.Timeout }

/**
 * An HTTP/1.1 request answered before its body is in (a plugin's 401, redirect, termination; an
 * upstream that answered without reading it all): the rest is read and thrown away to keep the
 * connection, however long it is. Kept only for a rest of DISCARD_MAX at most: past a larger
 * Content-Length the answer says `Connection: close`; a chunked body's rest (its size unknown) is
 * read up to DISCARD_MAX past the answer, then the connection is ended, as it is when the rest
 * can no longer be read (undici destroys a request whose upstream answered before taking all of
 * it: Node then reads nothing more off the connection), or once `deadlineMs` (clientTimeouts.body;
 * 0: none) has passed since the answer: a client trickling it would keep the connection for ever,
 * each byte restarting Node's idle timer (nginx bounds it so: lingering_time). Call before the head
 * is written (again: no effect).
 */
export function boundDiscard (req: IncomingMessage, socket: Socket, res: ServerResponse, received: number, deadlineMs: number): void {
  if ((req as Discarding)[SOCKET] !== undefined) return
  ;(req as Discarding)[SOCKET] = socket
  ;(req as Discarding)[DEADLINE] = deadlineMs
  // Node ends a connection whose answer says close with destroySoon(): at once, when a client still sending could miss the answer.
  // `socket` is the request's, kept: undici takes it off a request it was sent as a body (req.socket null).
  socket.destroySoon = lingerSoon
  const length = req.headers['content-length']
  if (length !== undefined && Number(length) - received > DISCARD_MAX) res.shouldKeepAlive = false
  else res.prependOnceListener('finish', watchDiscard)
}

/**
 * Once the answer is out, the rest of the body is read here, counted, before Node's own discard
 * would take it (a dumped body is thrown away unseen): prepended to Node's own finish listener.
 */
function watchDiscard (this: ServerResponse): void {
  const req = this.req as Discarding
  if (req.complete) return
  // Destroyed (undici's end of a body it was sending), now or later: its rest is never read, the connection ends.
  if (req.destroyed) { lingerSoon.call(req[SOCKET]); return }
  req[DISCARDED] = 0
  if (req[DEADLINE] > 0) req[TIMER] = setTimeout(discardTooLong, req[DEADLINE], req).unref()
  // Read at once, whoever held it paused (a plugin's body stream it was piped to, unpiped as that closes).
  req.unpipe().on('data', countDiscarded).once('close', discardClosed).resume()
}

function discardTooLong (req: Discarding): void {
  if (!req.complete) lingerSoon.call(req[SOCKET])
}

function countDiscarded (this: IncomingMessage, chunk: Buffer): void {
  if (((this as Discarding)[DISCARDED] += chunk.length) <= DISCARD_MAX) return
  this.off('data', countDiscarded)
  lingerSoon.call((this as Discarding)[SOCKET])
}

function discardClosed (this: IncomingMessage): void {
  clearTimeout((this as Discarding)[TIMER])
  if (!this.complete) lingerSoon.call((this as Discarding)[SOCKET])
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
function stayPaused (this: Duplex): void {
  this.pause()
}
