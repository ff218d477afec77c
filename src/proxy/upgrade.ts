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
