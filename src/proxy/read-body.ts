import type { IncomingMessage } from 'node:http'

/** Reads a request body whole (callers bound its size by content-length first). */
export function readBody (req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.once('end', () => resolve(Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

interface Marked { _readableState: { highWaterMark: number } }

/**
 * Has Node read `req`'s body on into its buffer, up to `bytes` (never less than it already does),
 * as Readable's read(n) raises its mark: a client that leaves having sent no more is then seen (the
 * FIN or RST behind the body is read). Returns the mark to restore (readTo) once the body is taken.
 */
export function readAhead (req: IncomingMessage, bytes: number): number {
  const state = (req as unknown as Marked)._readableState
  const mark = state.highWaterMark
  // Past the mark by one: Node stops reading once the buffer reaches it, a FIN right behind the body unread.
  if (bytes >= mark) state.highWaterMark = bytes + 1
  // Under the mark: Node resumes reading the socket (an HTTP/2 request reads nothing of its stream before it is read).
  req.read(0)
  return mark
}

/** Back to Node's own mark (readAhead's return): what is buffered past it is read out first. */
export function readTo (req: IncomingMessage, mark: number): void {
  (req as unknown as Marked)._readableState.highWaterMark = mark
}
