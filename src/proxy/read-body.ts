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
