import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** `<length> <sha256 hex>` of `body`: what answerDigest answers for a request that sent it. */
export const digest = (body: Buffer): string => `${body.length} ${createHash('sha256').update(body).digest('hex')}`

/** An upstream's answer to `req`: the digest of its body, once read whole. */
export function answerDigest (req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => res.end(digest(Buffer.concat(chunks))))
}
