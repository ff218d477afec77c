import type { IncomingMessage } from 'node:http'
import { GatewayError, type GatewayErrorKind } from '../errors.ts'

/** Why a request's framing or target is refused before routing; `close`: the connection cannot be trusted after it. */
export interface FramingFault {
  readonly error: GatewayErrorKind
  readonly close: boolean
}

const HTTP10_WITH_TE: FramingFault = { error: GatewayError.BAD_REQUEST, close: true }
const CHUNKED_TWICE: FramingFault = { error: GatewayError.BAD_REQUEST, close: true }
const UNKNOWN_CODING: FramingFault = { error: GatewayError.TRANSFER_CODING, close: true }
const TWO_HOSTS: FramingFault = { error: GatewayError.BAD_HOST, close: false }
const FRAGMENT: FramingFault = { error: GatewayError.BAD_REQUEST, close: false }

/**
 * Where the gateway's reading of a request could differ from the upstream's (RFC 9112): a
 * Transfer-Encoding on HTTP/1.0 (6.1: faulty framing, 400), a transfer coding other than one
 * `chunked` (6.1: 501, the gateway would forward bytes nobody can decode), two Host fields (3.2: 400 bad_host),
 * a fragment in the request target (3.2: it is not part of one). Node's parser lets these through.
 */
export function framingFault (req: IncomingMessage): FramingFault | undefined {
  const te = req.headers['transfer-encoding']
  if (te !== undefined) {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return HTTP10_WITH_TE
    // Node joins repeated Transfer-Encoding fields with ", ": every coding is judged.
    if (te.length !== 7 || te.toLowerCase() !== 'chunked') {
      const codings = te.toLowerCase().split(',')
      for (const c of codings) if (c.trim() !== 'chunked') return UNKNOWN_CODING
      return CHUNKED_TWICE
    }
  }
  // Node keeps the first Host and drops the others: the raw list tells whether there were more.
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts === 2) return TWO_HOSTS
  }
  if ((req.url as string).includes('#')) return FRAGMENT
  return undefined
}
