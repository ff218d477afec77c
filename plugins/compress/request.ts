import type { GatewayRequest } from '../../src/index.ts'
import { decodable, decoder } from './codings.ts'

/**
 * Decodes a request body sent with a Content-Encoding we know, so the upstream gets it plain. The
 * decoded size is bounded by request-size (which runs after compress, so it counts decoded bytes).
 */
export function decompressRequest (req: GatewayRequest): void {
  const encoding = req.headers['content-encoding']
  if (typeof encoding !== 'string') return
  const coding = decodable(encoding)
  if (coding === undefined) return
  req.pipeBodyThrough(decoder(coding))
  req.headers['content-encoding'] = undefined
  req.headers['content-length'] = undefined
}
