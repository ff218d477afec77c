import type { IncomingMessage } from 'node:http'
import { GatewayError } from '../../errors.ts'
import { framingFault } from '../../proxy/request-framing.ts'
import type { Refusal } from './browser-guard.ts'

const VERSION: Refusal = {
  status: GatewayError.HTTP_VERSION_NOT_SUPPORTED.status, error: GatewayError.HTTP_VERSION_NOT_SUPPORTED.code,
  message: 'the admin API speaks HTTP/1.0 and HTTP/1.1 only', close: true
}

/**
 * What Node's parser lets through and the gateway's port refuses, refused here too: an `HTTP/2.0` or
 * `HTTP/0.9` request line (nothing after it on the connection can be trusted), and framingFault's
 * (a transfer coding other than one chunked, two Host fields...). And a body in a Content-Encoding
 * (other than identity): no endpoint decodes one, and undecoded it is no JSON.
 */
export function framingRefusal (req: IncomingMessage, body: boolean): Refusal | undefined {
  if (req.httpVersionMajor !== 1) return VERSION
  const fault = framingFault(req)
  if (fault !== undefined) return { status: fault.error.status, error: fault.error.code, message: fault.error.message, close: fault.close }
  const coding = req.headers['content-encoding']
  if (body && coding !== undefined && coding.split(',').some(c => !/^\s*(?:identity)?\s*$/i.test(c))) {
    return { status: 415, error: 'unsupported_media_type', message: `the admin API does not decode request bodies: Content-Encoding "${coding}" is refused; send the JSON as it is` }
  }
  return undefined
}
