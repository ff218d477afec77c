import proxyAddr from 'proxy-addr'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'

/** Decides, once per config, whose X-Forwarded-* headers are believed. */
export function compileTrust (trustProxy: boolean | string[] | undefined): (addr: string, hop: number) => boolean {
  if (trustProxy === true) return () => true
  if (trustProxy === undefined || trustProxy === false) return () => false
  return proxyAddr.compile(trustProxy)
}

/**
 * Sets X-Forwarded-For/-Proto/-Host on the upstream headers and returns the client address.
 * Untrusted peers' X-Forwarded-* are replaced, trusted ones' are extended.
 */
export function applyForwarded (req: IncomingMessage, out: Record<string, string | string[] | undefined>, trust: (addr: string, hop: number) => boolean): string {
  const peer = req.socket.remoteAddress ?? ''
  const trusted = trust(peer, 0)
  const proto = (req.socket as TLSSocket).encrypted === true ? 'https' : 'http'
  const priorFor = req.headers['x-forwarded-for']
  if (trusted && typeof priorFor === 'string' && priorFor !== '') {
    out['x-forwarded-for'] = `${priorFor}, ${peer}`
    out['x-forwarded-proto'] = req.headers['x-forwarded-proto'] ?? proto
    out['x-forwarded-host'] = req.headers['x-forwarded-host'] ?? req.headers.host
    return proxyAddr(req, trust)
  }
  out['x-forwarded-for'] = peer
  out['x-forwarded-proto'] = trusted ? req.headers['x-forwarded-proto'] ?? proto : proto
  const host = trusted ? req.headers['x-forwarded-host'] ?? req.headers.host : req.headers.host
  if (host === undefined) delete out['x-forwarded-host']
  else out['x-forwarded-host'] = host
  return peer
}
