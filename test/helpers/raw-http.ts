import { connect, createServer, type AddressInfo, type Server } from 'node:net'

/** A response read off a raw socket: header names as sent (lower-cased here), values untouched. */
export interface RawResponse {
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string
}

/** Every value of header `name` in a raw response. */
export function headerValues (res: RawResponse, name: string): string[] {
  return res.headers.filter(([n]) => n === name).map(([, v]) => v)
}

function parse (text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
  const headers = lines.map(l => {
    const colon = l.indexOf(':')
    return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()] as const
  })
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) }
}

/**
 * Sends exactly `lines` (the request head, CRLF-joined) and `body` on a new socket and reads the
 * response until the server closes the connection (send `Connection: close`).
 */
export function rawRequest (port: number, lines: string[], body = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('end', () => { socket.destroy(); resolve(parse(Buffer.concat(chunks).toString('latin1'))) })
    socket.write(lines.join('\r\n') + '\r\n\r\n' + body)
  })
}

export interface RawUpstream { readonly url: string, close (): Promise<void> }

/** An upstream that answers every request with exactly `response` (CRLF-joined) and closes. */
export async function startRawUpstream (response: string[]): Promise<RawUpstream> {
  const server: Server = createServer(socket => {
    let head = ''
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1')
      if (head.includes('\r\n\r\n')) socket.end(response.join('\r\n'))
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>(resolve => server.close(() => resolve()))
  }
}
