import { GatewayError, type GatewayErrorKind } from '../errors.ts'

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
