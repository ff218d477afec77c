import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Counts, per connection, the requests read whose answers are not yet sent (handed to the kernel).
 * Node runs every request a client pipelines (sends before reading the answers), as many as one
 * read brings (a 64 KiB read holds hundreds), and holds their answers until the client reads:
 * a client that pipelines thousands of GET /metrics and reads none would make the process hold
 * thousands of expositions. Returns the count `req` makes, itself included.
 */
export function unsentAnswers (): (req: IncomingMessage, res: ServerResponse) => number {
  const unsent = new WeakMap<Socket, number>()
  return (req, res) => {
    const socket = req.socket
    const count = (unsent.get(socket) ?? 0) + 1
    unsent.set(socket, count)
    let sent = false
    // 'close' alone for an answer never sent (its connection closed first).
    const done = () => {
      if (sent) return
      sent = true
      unsent.set(socket, (unsent.get(socket) ?? 1) - 1)
    }
    res.once('finish', done).once('close', done)
    return count
  }
}
