import type { IncomingMessage } from 'node:http'

/**
 * Calls `arrived` (with `req` as `this`) once the request's body is all in the gateway: when Node
 * pushes the body's end into the request, read or not. Its 'end' waits for a reader, and a plugin
 * may hold the request unread for longer than the body timeout.
 */
export function onBodyArrived (req: IncomingMessage, arrived: (this: IncomingMessage) => void): void {
  const push = req.push
  req.push = (chunk: unknown, encoding?: BufferEncoding) => {
    const more = push.call(req, chunk, encoding)
    if (chunk === null) arrived.call(req)
    return more
  }
}
