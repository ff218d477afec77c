import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http'

/**
 * Node re-reads a Content-Disposition that follows a Content-Length as UTF-8 (nodejs/node#46528):
 * an upstream's UTF-8 filename went out mangled (C3 A9 as E9), and a Latin-1 one made Node throw.
 * Written before the length, its bytes go out as they came. Only the order of fields changes.
 * Two lookups, by lower-case name: the exchange moves the length past one a plugin named in
 * another case (see Exchange #frame).
 */
export function dispositionFirst (fields: OutgoingHttpHeaders): void {
  if (fields['content-length'] !== undefined && fields['content-disposition'] !== undefined) lengthLast(fields)
}

/** Moves Content-Length (named in lower case) after every other field. */
export function lengthLast (fields: OutgoingHttpHeaders): void {
  const length = fields['content-length']
  delete fields['content-length']
  fields['content-length'] = length
}

/** An HTTP/1.x response whose head, written with writeHead's fields, keeps a Content-Disposition's bytes (see dispositionFirst). */
export class DispositionFirstResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  override writeHead (status: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    const fields = typeof reason === 'object' ? reason : headers
    if (fields !== undefined && !Array.isArray(fields)) dispositionFirst(fields)
    return super.writeHead(status, reason as string, headers)
  }
}
