import proxyAddr from 'proxy-addr'
import type { IncomingMessage } from 'node:http'
import { isIPv4, isIPv6 } from 'node:net'
import type { TLSSocket } from 'node:tls'

/**
 * Headers in which a proxy tells the next hop who the client is, how and where it connected, or
 * which certificate it showed: backends read them (Forwarded in Spring and Go, X-Real-IP behind
 * nginx, X-Forwarded-Port/-Prefix to build links, X-Forwarded-Client-Cert to authenticate). From a
 * peer that is not a trusted proxy they are the client's own claims: none reaches the upstream.
 * X-Forwarded-For/-Proto/-Host are replaced instead, and X-Real-IP and X-Forwarded-Port set (applyForwarded).
 */
const PROXY_HEADERS = [
  'forwarded', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-server',
  'x-forwarded-by', 'x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-client-cert', 'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info', 'x-original-forwarded-for', 'x-real-ip', 'true-client-ip', 'x-client-ip', 'client-ip',
  'x-cluster-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-url-scheme', 'front-end-https', 'x-forwarded',
  'forwarded-for', 'x-originating-ip', 'x-envoy-external-address'
]

const PORT = /^\d{1,5}$/

/** Those and what applyForwarded sets: where an upstream learns who the client is. Lower-case names. */
const CLIENT_HEADERS = new Set([...PROXY_HEADERS, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'])

/**
 * Framing and hop-by-hop names with a `-`, whose `_` spellings are dropped too (nginx drops every
 * name with `_` by default): the gateway frames each hop itself, and a server that reads
 * `Transfer_Encoding` as Transfer-Encoding could frame the body by a client's claim.
 */
const FRAMING = ['transfer-encoding', 'content-length', 'keep-alive', 'http2-settings']

/** A (lower-case) header name as CGI, WSGI and Rack servers read it: `_` as `-`. */
const dashedForm = (name: string): string => name.includes('_') ? name.replaceAll('_', '-') : name

/** Whether `name` (lower-case), in either spelling, tells the upstream who the client is or how it connected: the gateway's to say. */
export const isForwardingHeader = (name: string): boolean => CLIENT_HEADERS.has(dashedForm(name))

/**
 * An X-Forwarded-For entry without the port some proxies write (Azure Application Gateway:
 * `203.0.113.7:51234`, `[2001:db8::1]:443`). Only what becomes an IP address changes: other text
 * (`unknown`, `unknown:80`) stays as sent, and is no client (forwardedClient).
 */
function bareAddress (addr: string): string {
  if (addr.charCodeAt(0) === 91 /* [ */) {
    const close = addr.indexOf(']')
    if (close === -1 || (close !== addr.length - 1 && (addr.charCodeAt(close + 1) !== 58 || !PORT.test(addr.slice(close + 2))))) return addr
    const inner = addr.slice(1, close)
    return isIPv6(inner) ? inner : addr
  }
  // One colon only: an IPv6 address has two or more.
  const colon = addr.indexOf(':')
  if (colon === -1 || addr.indexOf(':', colon + 1) !== -1) return addr
  const host = addr.slice(0, colon)
  return PORT.test(addr.slice(colon + 1)) && isIPv4(host) ? host : addr
}

/** Decides, once per config, whose forwarding headers are believed. */
export function compileTrust (trustProxy: boolean | string[] | undefined): (addr: string, hop: number) => boolean {
  if (trustProxy === true) return () => true
  if (trustProxy === undefined || trustProxy === false) return () => false
  const trusts = proxyAddr.compile(trustProxy)
  // A proxy in the chain written with a port (10.0.0.2:8080) is still the proxy.
  return (addr, hop) => trusts(bareAddress(addr), hop)
}

/**
 * The request headers left out for a trusted peer, once per config: `removed` (lower-case) and any
 * `_` spelling of those and of the forwarding headers (`X_Original_URL` reaches such a server as
 * X-Original-URL). No proxy writes those: from any peer they are a client's claim that such a server
 * could read in place of (or merged with) the header the gateway or its proxy set. Compared in the
 * dashed form, only for a name with `_`: a listing of spellings doubles with each `-` of a name.
 */
export function trustedRemovals (removed: ReadonlySet<string>): (name: string) => boolean {
  const underscored = new Set([...CLIENT_HEADERS, ...FRAMING, ...[...removed].map(dashedForm)])
  return name => removed.has(name) || (name.includes('_') && underscored.has(name.replaceAll('_', '-')))
}

/** The request headers left out for an untrusted peer, once per config: those and the proxies' headers. */
export function untrustedRemovals (removed: ReadonlySet<string>): (name: string) => boolean {
  return trustedRemovals(new Set([...removed, ...PROXY_HEADERS]))
}

/** Whether the peer is a trusted proxy: then its forwarding headers are passed on (see untrustedRemovals). */
export function trustsPeer (req: IncomingMessage, trust: (addr: string, hop: number) => boolean): boolean {
  return trust(req.socket.remoteAddress ?? '', 0)
}

/** A trusted proxy sent the request on, naming the addresses before it (X-Forwarded-For). */
function forwardedBy (req: IncomingMessage, trusted: boolean): boolean {
  const priorFor = req.headers['x-forwarded-for']
  return trusted && typeof priorFor === 'string' && priorFor !== ''
}

/** An IP address without a zone: a zone names an interface of the host that wrote it, and may be any length. */
const isAddress = (addr: string): boolean => isIPv4(addr) || (isIPv6(addr) && !addr.includes('%'))

/**
 * Behind trusted proxies, the nearest address in X-Forwarded-For that is not one, without a port.
 * An entry that is no IP address (`unknown`, a client's text) ends the walk, as in nginx's realip:
 * the client is the hop that named it (the peer, or the trusted proxy after it in the list). Taken as
 * it is, any text became the logged clientIp, X-Real-IP and the rate-limit key.
 */
function forwardedClient (req: IncomingMessage, trust: (addr: string, hop: number) => boolean): string {
  // The peer, then the entries from the right up to the first that is not trusted.
  const chain = proxyAddr.all(req, trust)
  let client = req.socket.remoteAddress ?? ''
  for (let i = 1; i < chain.length; i++) {
    const addr = bareAddress(chain[i] as string)
    if (!isAddress(addr)) break
    client = addr
  }
  return client
}

/**
 * The client's address, as applyForwarded finds it: the peer's, or forwardedClient's. For the
 * lines of requests refused before routing.
 */
export function clientAddress (req: IncomingMessage, trust: (addr: string, hop: number) => boolean): string {
  return forwardedBy(req, trustsPeer(req, trust)) ? forwardedClient(req, trust) : req.socket.remoteAddress ?? ''
}

/** The port in a Host value, else the scheme's default; undefined where neither reads as a port. */
function portOf (host: string | string[] | undefined, proto: string | string[]): string | undefined {
  if (typeof host !== 'string') return undefined
  const colon = host.lastIndexOf(':')
  if (colon === -1 || host.charCodeAt(host.length - 1) === 93 /* ] of an IPv6 literal */) return proto === 'https' ? '443' : proto === 'http' ? '80' : undefined
  const port = host.slice(colon + 1)
  return PORT.test(port) ? port : undefined
}

/**
 * Sets X-Forwarded-For/-Proto/-Host, X-Real-IP and X-Forwarded-Port on the upstream headers and
 * returns the client address. An untrusted peer's X-Forwarded-* are replaced (its other forwarding
 * headers were left out of `out`), a trusted one's are extended or kept.
 */
export function applyForwarded (req: IncomingMessage, out: Record<string, string | string[] | undefined>, trust: (addr: string, hop: number) => boolean, trusted: boolean): string {
  const peer = req.socket.remoteAddress ?? ''
  const priorFor = req.headers['x-forwarded-for']
  let client = peer
  if (forwardedBy(req, trusted)) {
    out['x-forwarded-for'] = `${priorFor as string}, ${peer}`
    client = forwardedClient(req, trust)
  } else {
    out['x-forwarded-for'] = peer
  }
  const ownProto = (req.socket as TLSSocket).encrypted === true ? 'https' : 'http'
  const proto = out['x-forwarded-proto'] = trusted ? req.headers['x-forwarded-proto'] ?? ownProto : ownProto
  const host = trusted ? req.headers['x-forwarded-host'] ?? req.headers.host : req.headers.host
  if (host === undefined) delete out['x-forwarded-host']
  else out['x-forwarded-host'] = host
  out['x-real-ip'] = client
  // A trusted proxy's own X-Forwarded-Port is kept; otherwise the port of the host the client addressed.
  if (!trusted || out['x-forwarded-port'] === undefined) {
    const port = portOf(host, proto)
    if (port !== undefined) out['x-forwarded-port'] = port
  }
  return client
}
