import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { destroyAfterLinger, GatewayError, type GatewayErrorKind } from '../errors.ts'

/**
 * Why an Upgrade request is refused on a route that tunnels `allowed`, or undefined. Every protocol
 * the client offers must be allowed: the upstream may pick any of them. h2c never is (the bytes after
 * the switch would be HTTP/2 requests reaching the upstream without routing or plugins).
 */
export function upgradeRefusal (allowed: ReadonlySet<string>, upgrade: string | undefined): GatewayErrorKind | undefined {
  const offered = (upgrade ?? '').toLowerCase()
  if (offered === 'websocket') return allowed.has(offered) ? undefined : GatewayError.WEBSOCKET_DISABLED
  for (const p of offered.split(',')) {
    const name = p.trim()
    if (name === '' || name === 'h2c' || name.startsWith('h2c/') || !allowed.has(name)) return name === 'websocket' ? GatewayError.WEBSOCKET_DISABLED : GatewayError.UPGRADE_REFUSED
  }
  return undefined
}

/**
 * Whether a 101's Upgrade (in undici's raw [name, value, ...]) switches only to protocols the client
 * offered (`offered`: its request's Upgrade), as RFC 9110 7.8 has it. Otherwise the tunnel would carry
 * a protocol no route allowed (h2c, say). A 101 that names none switches to nothing the client asked for.
 */
export function switchesToOffered (raw: ReadonlyArray<Buffer | string>, offered: string): boolean {
  const asked = offered.toLowerCase().split(',').map(p => p.trim())
  let named = false
  for (let i = 0; i < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() !== 'upgrade') continue
    for (const p of String(raw[i + 1]).toLowerCase().split(',')) {
      const name = p.trim()
      if (name === '') continue
      if (!asked.includes(name)) return false
      named = true
    }
  }
  return named
}

const RESPONSE = Symbol('upgrade response')
type Watched = Duplex & { [RESPONSE]: ServerResponse }

/**
 * Until its tunnel opens (see tunnelling), an upgrade's client that ends its side (FIN) is gone, as
 * on plain HTTP: its socket is destroyed, which closes `res` (logged 499, the upstream's request
 * aborted). HTTP/1 sockets are half-open: a FIN brings 'end', never 'close'. Once an answer (not a
 * 101) has begun, after a linger: a half-closed client still reads an answer that ends within it,
 * one that streams on or stalls holds no upstream connection until the route's timeouts. Bytes the
 * client sent ahead of the 101 hold the 'end' back until the tunnel reads them (WebSocket clients
 * send none before it); those read with the request (the upgrade's `head`) are out of the socket's
 * buffer, so the caller does not watch such a socket.
 */
export function closeOnEnd (socket: Duplex, res: ServerResponse): void {
  (socket as Watched)[RESPONSE] = res
  socket.once('end', clientEnded)
}

/** The tunnel is opening: a client's end is now half a tunnel closed, relayed upstream. */
export function tunnelling (socket: Duplex): void {
  socket.removeListener('end', clientEnded)
}

function clientEnded (this: Watched): void {
  const res = this[RESPONSE]
  if (!res.headersSent) this.destroy()
  // A finished answer's connection already lingers (see Runtime.handleUpgrade).
  else if (!res.writableFinished) destroyAfterLinger(this)
}

/** Follows one direction of a WebSocket's frames (their headers' lengths): whether the bytes seen so far end at a frame's end. */
export class FrameEdges {
  /** The header bytes of a frame begun in an earlier chunk (at most 14), and how many. */
  readonly #head = Buffer.alloc(14)
  #had = 0
  /** Payload bytes of the frame begun still to come. */
  #left = 0

  get atEdge (): boolean { return this.#had === 0 && this.#left === 0 }

  readonly see = (chunk: Buffer): void => { this.#follow(chunk, false) }

  /** Follows `chunk` up to the end of the frame in progress (all of it if that frame goes on): how many bytes that is, 0 between frames. */
  toEdge (chunk: Buffer): number { return this.#follow(chunk, true) }

  // Per chunk, without allocating: a header read where it lies, copied only when split across chunks.
  #follow (chunk: Buffer, stopAtEdge: boolean): number {
    let i = 0
    while (i < chunk.length && !(stopAtEdge && this.atEdge)) {
      if (this.#left > 0) {
        const n = Math.min(this.#left, chunk.length - i)
        this.#left -= n
        i += n
        continue
      }
      if (this.#had === 0 && chunk.length - i >= 2) {
        const size = headerSize(chunk[i + 1] as number)
        if (chunk.length - i >= size) {
          this.#left = payloadLength(chunk, i)
          i += size
          continue
        }
      }
      this.#head[this.#had++] = chunk[i++] as number
      if (this.#had < 2 || this.#had < headerSize(this.#head[1] as number)) continue
      this.#left = payloadLength(this.#head, 0)
      this.#had = 0
    }
    return i
  }
}

/** A frame header's size in bytes from its second byte: the length's extension, the mask key. */
const headerSize = (second: number): number => {
  const len7 = second & 0x7f
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (second & 0x80 ? 4 : 0)
}

/** The payload length of the frame whose header starts at `at`. */
function payloadLength (bytes: Buffer, at: number): number {
  const len7 = (bytes[at + 1] as number) & 0x7f
  if (len7 < 126) return len7
  let left = 0
  for (let b = at + 2; b < at + (len7 === 126 ? 4 : 10); b++) left = left * 256 + (bytes[b] as number)
  return left
}

/** A close frame with `code`; masked (as a client must send it) with a random key when `masked`. */
function closeFrame (code: number, reason: string, masked: boolean): Buffer {
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)])
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload])
  const key = crypto.getRandomValues(new Uint8Array(4))
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), key, payload.map((b, i) => b ^ (key[i % 4] as number))])
}

/** A planned close of a WebSocket: the client's close code (the upstream's is 1001, Going Away) and the reason both are given. */
export interface PlannedClose { readonly code: number, readonly reason: string }

/**
 * Closes a WebSocket tunnel for a reload or a shutdown: the client is sent a close frame with
 * `close.code` and the upstream 1001 (Going Away), then each connection is ended (see closeAtEdge);
 * what the ends send after (their close frames) is dropped. The caller destroys both after a grace.
 */
export function closeWebSocket (client: Duplex, upstream: Duplex, frames: { toClient: FrameEdges, toUpstream: FrameEdges }, close: PlannedClose): void {
  closeAtEdge(upstream, client, frames.toClient, closeFrame(close.code, close.reason, false))
  closeAtEdge(client, upstream, frames.toUpstream, closeFrame(1001, close.reason, true))
}

/**
 * One direction of a planned close: the relay from `from` to `to` stops at the end of the frame in
 * progress (cut in its middle, `to`'s end would see the stream corrupt: the connection cut, 1006),
 * then `to` is sent `closing` and ended. Until then the relay keeps to `to`'s backpressure.
 */
function closeAtEdge (from: Duplex, to: Duplex, edges: FrameEdges, closing: Buffer): void {
  from.unpipe(to)
  from.off('data', edges.see)
  const relay = (chunk: Buffer): void => {
    const n = edges.toEdge(chunk)
    const room = to.write(n === chunk.length ? chunk : chunk.subarray(0, n))
    if (edges.atEdge) done()
    else if (!room) { from.pause(); to.once('drain', () => from.resume()) }
  }
  const done = (): void => {
    from.off('data', relay)
    to.end(closing)
  }
  if (edges.atEdge) done()
  else from.on('data', relay)
  from.resume()
}
