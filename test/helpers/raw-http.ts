import { connect, createServer, type AddressInfo, type Server } from 'node:net'
import type { Duplex } from 'node:stream'

/** A response read off a raw socket: header names as sent (lower-cased here), values untouched. */
export interface RawResponse {
  /** The status line and header lines as sent. */
  readonly head: string
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
  return { head: text.slice(0, end), status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) }
}

/**
 * Sends exactly `lines` (the request head, CRLF-joined) and `body` on a new socket and reads the
 * response until the server closes the connection (send `Connection: close`). A response the
 * server cuts (reset) rejects: see rawCut.
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

/** As rawRequest, for a response the server cuts: what came before the connection closed, reset (RST) or not. */
export function rawCut (port: number, lines: string[]): Promise<RawResponse> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {})
    socket.on('close', () => { resolve(parse(Buffer.concat(chunks).toString('latin1'))) })
    socket.write(lines.join('\r\n') + '\r\n\r\n')
  })
}

/**
 * Sends `lines` and `body` on a new socket and reads one response (framed by its Content-Length),
 * then sends `next` on the same socket: `second` is its response, or 'closed' when the server
 * ended the connection after the first instead. Tells a connection kept from one closed without
 * waiting for a timeout.
 */
export function rawThenAgain (port: number, lines: string[], body: string, next: string[]): Promise<{ first: RawResponse, second: RawResponse | 'closed' }> {
  const socket = connect(port, '127.0.0.1')
  const answers = readThenAgain(socket, next.join('\r\n') + '\r\n\r\n')
  socket.write(lines.join('\r\n') + '\r\n\r\n' + body)
  return answers
}

/**
 * Reads one response (framed by its Content-Length) off `socket` (plain or TLS), then sends `next`
 * at once on it, as a client reusing the connection does: `second` is its response, or 'closed'
 * when the server ended the connection after the first instead.
 */
export function readThenAgain (socket: Duplex, next: string): Promise<{ first: RawResponse, second: RawResponse | 'closed' }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0)
    let first: RawResponse | undefined
    /** One whole response at the start of `buffered`, taken off it, or undefined while it is incomplete. */
    const take = (): RawResponse | undefined => {
      const end = buffered.indexOf('\r\n\r\n')
      if (end < 0) return undefined
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.subarray(0, end).toString('latin1'))?.[1] ?? 0)
      if (buffered.length < end + 4 + length) return undefined
      const res = parse(buffered.subarray(0, end + 4 + length).toString('latin1'))
      buffered = buffered.subarray(end + 4 + length)
      return res
    }
    socket.on('data', (c: Buffer) => {
      buffered = Buffer.concat([buffered, c])
      if (first === undefined && (first = take()) !== undefined) socket.write(next)
      const second = first === undefined ? undefined : take()
      if (first !== undefined && second !== undefined) { socket.destroy(); resolve({ first, second }) }
    })
    socket.on('error', reject)
    socket.on('end', () => {
      socket.destroy()
      if (first === undefined) reject(new Error('the connection ended before a whole response'))
      else resolve({ first, second: 'closed' })
    })
  })
}

/**
 * Sends `head` (CRLF-joined, blank line added), then `piece` again and again as fast as the server
 * takes it, `max` bytes in all, and reads what comes back. Resolves at the server's end of the
 * connection (`ended`), or once the server took all `max` bytes without ending it: `sent` says how
 * many it took. The socket is destroyed then.
 */
export function floodBody (port: number, head: string[], piece: Buffer, max: number): Promise<{ answer: string, ended: boolean, sent: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let sent = 0
    const done = (ended: boolean) => { socket.destroy(); resolve({ answer: Buffer.concat(chunks).toString('latin1'), ended, sent }) }
    const pump = (): void => {
      while (sent < max && !socket.destroyed) {
        sent += piece.length
        // The last piece's callback: the server has taken (the kernel accepted) every byte.
        const ok = socket.write(piece, sent >= max ? () => done(false) : undefined)
        if (!ok) return
      }
    }
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => done(true))
    socket.on('drain', pump)
    socket.on('error', reject)
    socket.write(head.join('\r\n') + '\r\n\r\n')
    pump()
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
