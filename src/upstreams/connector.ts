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
  }
}

/** What of undici's HTTP/1 parser (socket[Symbol('parser')]) this needs. */
interface Parser { paused: boolean, resume: () => void }

/**
 * undici 7's HTTP/1 parser asserts it is not paused when the upstream ends a response by closing
 * the connection (`Connection: close`, or a body without length): paused by a slow client's
 * backpressure (or a plugin stream's), the AssertionError, thrown from the socket's 'end' or
 * 'close', ended the process (nodejs/undici#5360, fixed in undici 8, which needs Node 22.19).
 * The parser is resumed first: at 'end' every byte has been read (the rest of the body, if any, is
 * what it is handed then); at 'close' (the socket destroyed) a response not whole fails as cut short.
 */
function resumeParserAtEnd (socket: Socket): void {
  const emit = socket.emit
  let key: symbol | undefined
  socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'end' || event === 'close') {
      key ??= Object.getOwnPropertySymbols(this).find(k => k.description === 'parser')
      const parser = key === undefined ? undefined : (this as unknown as Record<symbol, Parser | null>)[key]
      if (parser?.paused === true) {
        parser.resume()
        parser.paused = false
      }
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean
  } as Socket['emit']
}
