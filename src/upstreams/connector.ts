import type { Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { buildConnector } from 'undici'

/**
 * undici's connect timeout runs on its coarse ticker and can fire a second late; this one is a
 * plain timer, armed once per new connection (not per request), so `timeouts.connect` holds.
 */
export function connectorWithTimeout (timeoutMs: number, tls?: ConnectionOptions): buildConnector.connector {
  // TLS options apply to https:// targets only (undici picks tls.connect by the origin's protocol).
  const connect = buildConnector({ ...tls, timeout: 0 } as buildConnector.BuildOptions)
  return (options, callback) => {
    const timer = setTimeout(() => {
      const err = new Error(`Connect Timeout Error (attempted address: ${options.hostname}:${options.port}, timeout: ${timeoutMs}ms)`)
      socket.destroy(Object.assign(err, { code: 'UND_ERR_CONNECT_TIMEOUT' }))
    }, timeoutMs)
    const socket = connect(options, (...args) => { clearTimeout(timer); callback(...args) }) as unknown as Socket
    resumeParserAtEnd(socket)
    dropUnaskedContinue(socket)
  }
}

/** What of undici's HTTP/1 parser (socket[Symbol('parser')]) this needs. */
interface Parser { paused: boolean, resume: () => void, statusCode: number, shouldKeepAlive: boolean }

let parserKey: symbol | undefined

/** undici's parser of `socket`: undefined before it has one, null once it is upgraded or closed. */
function parserOf (socket: Socket): Parser | null | undefined {
  parserKey ??= Object.getOwnPropertySymbols(socket).find(k => k.description === 'parser')
  return parserKey === undefined ? undefined : (socket as unknown as Record<symbol, Parser | null>)[parserKey]
}

/**
 * undici 7's HTTP/1 parser asserts it is not paused when the upstream ends a response by closing
 * the connection (`Connection: close`, or a body without length): paused by a slow client's
 * backpressure (or a plugin stream's), the AssertionError, thrown from the socket's 'end', 'close'
 * or 'error', ended the process (nodejs/undici#5360, fixed in undici 8, which needs Node 22.19).
 * The parser is resumed first: at 'end' every byte has been read (the rest of the body, if any, is
 * what it is handed then); at 'close' (the socket destroyed) a response not whole fails as cut short.
 *
 * At 'error', undici takes an ECONNRESET during such a response for its end (a "Mac OS" branch of
 * onHttpSocketError, `statusCode && !shouldKeepAlive`): finish() asserted as above, or, not paused,
 * made a body without length whole. A reset is an abort: marking the response keep-alive sends
 * undici down its error path (the response fails, as a cut Content-Length body does); the
 * connection is gone anyway, and its 'close' sees the error set.
 * Remove when: the resume with undici 8 (its finish() resumes, nodejs/undici#5474); the reset's
 * mark not yet (undici's main still calls finish() on an ECONNRESET).
 */
function resumeParserAtEnd (socket: Socket): void {
  const emit = socket.emit
  socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'end' || event === 'close' || event === 'error') {
      const parser = parserOf(this)
      if (parser?.paused === true) {
        parser.resume()
        parser.paused = false
      }
      if (event === 'error' && parser != null && parser.statusCode !== 0) parser.shouldKeepAlive = true
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean
  } as Socket['emit']
}

const CONTINUE_LINE = /^HTTP\/1\.[01] 100[ \r]/

/** Whether a read may start with a 100's status line: bytes compared first, as every response head's read passes here. */
const isContinue = (chunk: Buffer): boolean => chunk[9] === 0x31 && chunk[10] === 0x30 && chunk[11] === 0x30 && chunk[0] === 0x48

/** Set on undici's parser: whether every byte it has parsed so far ended a message (none begun since). */
const BETWEEN = Symbol('between messages')

interface TrackedParser extends Parser {
  [BETWEEN]: boolean
  onMessageBegin: () => number
  onMessageComplete: () => number
}

/** Follows the parser's message boundaries (llhttp calls these on the instance for each message, interim ones too). */
function trackMessages (parser: TrackedParser): void {
  parser[BETWEEN] = true
  const begin = parser.onMessageBegin
  const complete = parser.onMessageComplete
  parser.onMessageBegin = function (this: TrackedParser) { this[BETWEEN] = false; return begin.call(this) }
  parser.onMessageComplete = function (this: TrackedParser) { const r = complete.call(this); this[BETWEEN] = true; return r }
}

/**
 * A 100 (Continue) the gateway did not ask for (it never sends Expect upstream) is an interim
 * response a client must take (RFC 9110 15.2), but undici 7 fails the request on it ("bad
 * response"): a 502, and a failure counted against the target. Dropped here when a read starts
 * with it between messages: every byte read so far parsed (none buffered) and the last one ended a
 * message (llhttp's own boundaries, not a guess: a head cut across reads whose next part is a
 * header value reading "HTTP/1.1 100 ..." is the head's). One cut across reads is left to undici.
 * Remove when undici takes an unasked 100 (undici 8 still fails on it).
 */
function dropUnaskedContinue (socket: Socket): void {
  const push = socket.push
  // Its parser, instrumented at the first read (undici makes it before any byte can come).
  let parser: TrackedParser | null | undefined
  socket.push = function (this: Socket, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (parser === undefined && chunk !== null) {
      parser = parserOf(this) as TrackedParser | null | undefined
      if (parser != null) trackMessages(parser)
    }
    if (chunk instanceof Buffer && isContinue(chunk) && this.readableLength === 0 && parser?.[BETWEEN] === true && parserOf(this) === parser) {
      let start = 0
      while (CONTINUE_LINE.test(chunk.toString('latin1', start, start + 13))) {
        const end = chunk.indexOf('\r\n\r\n', start)
        if (end < 0) break
        start = end + 4
      }
      if (start === chunk.length) return true
      chunk = chunk.subarray(start)
    }
    return Reflect.apply(push, this, [chunk, encoding]) as boolean
  }
}
