import { METHODS } from 'node:http'
import { isIP } from 'node:net'
import type { GatewayConfig, UpstreamConfig } from './schema.ts'
import type { SchemaProblem } from './validate.ts'
import { bareNumberHint, toMs } from './duration.ts'
import { didYouMean } from './suggest.ts'
import { DEFAULT_CHECK_INTERVAL_MS, statusRange } from '../upstreams/settings.ts'
import { DEFAULT_PASSIVE } from '../upstreams/outlier-detection.ts'
import { hideUrlSecrets, PORT_NOT_A_NUMBER } from './url-userinfo.ts'

type Add = (path: Array<string | number>, message: string) => void

/** The shortest dnsInterval (0, or a number meant as seconds, would look the name up hundreds of times a second). */
const MIN_DNS_INTERVAL_MS = 1_000

/** Upstream checks the schema cannot express: key combinations, ranges, duplicate targets. */
export function checkUpstreams (upstreams: GatewayConfig['upstreams'], add: Add, skip: ReadonlySet<string>): void {
  for (const [name, u] of Object.entries(upstreams)) {
    if (skip.has(name)) continue
    const here = (...rest: Array<string | number>) => ['upstreams', name, ...rest]
    if (u.balance === 'consistent-hash' && u.hashOn === undefined) add(here('balance'), 'consistent-hash needs hashOn: { header: NAME }, { cookie: NAME }, { clientIp: true } or { path: true }')
    if (u.hashOn !== undefined && u.balance !== 'consistent-hash') add(here('hashOn'), 'hashOn is only used with balance: consistent-hash')

    const seen = new Map<string, number>()
    u.targets.forEach((t, i) => {
      const origin = URL.parse(t.url)
      // The schema's pattern takes any host and port characters: the URL parser judges them.
      if (origin === null) { add(here('targets', i, 'url'), unparsableUrl(t.url)); return }
      const first = seen.get(origin.origin)
      if (first !== undefined) add(here('targets', i, 'url'), `${origin.origin} is already targets[${first}]`)
      else seen.set(origin.origin, i)
      if (t.resolve === 'dns' && isIP(origin.hostname.replace(/^\[(.*)\]$/, '$1')) !== 0) add(here('targets', i, 'resolve'), `"${origin.hostname}" is an address, not a name to resolve`)
      if (t.dnsInterval !== undefined && t.resolve !== 'dns') add(here('targets', i, 'dnsInterval'), 'dnsInterval is only used with resolve: dns')
      else if (t.dnsInterval !== undefined && toMs(t.dnsInterval) < MIN_DNS_INTERVAL_MS) add(here('targets', i, 'dnsInterval'), `must be at least 1s: a name looked up more often loads its DNS servers for nothing${bareNumberHint(t.dnsInterval)}`)
    })

    // 0 is no limit for the response timeouts, but would be no time at all for these two (every request failed).
    if (u.timeouts?.connect !== undefined && toMs(u.timeouts.connect) === 0) add(here('timeouts', 'connect'), 'must be more than 0: it is how long a new connection may take to open')
    if (u.keepAlive !== undefined && toMs(u.keepAlive) === 0) add(here('keepAlive'), 'must be more than 0: idle connections are kept at least 1ms (which closes them almost at once)')

    const h = u.healthCheck
    if (h !== undefined) {
      const interval = h.interval === undefined ? DEFAULT_CHECK_INTERVAL_MS : toMs(h.interval)
      const timeout = h.timeout === undefined ? undefined : toMs(h.timeout)
      if (interval === 0) add(here('healthCheck', 'interval'), 'must be more than 0')
      // No time at all, not no limit: every check would fail, every target be unhealthy.
      else if (timeout === 0) add(here('healthCheck', 'timeout'), 'must be more than 0: it is how long a check may take (default 1s)')
      else if (timeout !== undefined && timeout >= interval) add(here('healthCheck', 'timeout'), 'must be shorter than healthCheck.interval')
      h.expectStatus?.forEach((s, i) => {
        const [lo, hi] = statusRange(s)
        if (lo > hi) add(here('healthCheck', 'expectStatus', i), `range "${s}" is empty`)
      })
    }
    if (u.passive !== undefined && u.passive !== false) checkEjections(u.passive, (key, message) => add(here('passive', key), message))
    if (u.retries !== undefined && u.retries !== false) {
      u.retries.methods?.forEach((m, i) => {
        if (!METHODS.includes(m.toUpperCase())) add(here('retries', 'methods', i), `unknown HTTP method "${m}"${didYouMean(m.toUpperCase(), METHODS)}`)
      })
    }
  }
}

/**
 * What loads but is likely not meant, of upstreams that passed every check: a `tls` block with
 * http:// targets, which it does not apply to (their requests go in clear, however it reads).
 */
export function upstreamWarnings (upstreams: GatewayConfig['upstreams']): SchemaProblem[] {
  return Object.entries(upstreams).flatMap(([name, u]): SchemaProblem[] => {
    if (u.tls === undefined) return []
    const plain = u.targets.flatMap((t, i) => t.url.startsWith('http:') ? [`targets[${i}]`] : [])
    if (plain.length === 0) return []
    const listed = plain.length > 3 ? `${plain.slice(0, 3).join(', ')} and ${plain.length - 3} more` : plain.join(', ')
    const message = plain.length === u.targets.length
      ? 'is not used: it applies to https:// targets only, and every target here is http:// (reached without TLS; write https:// to use it)'
      : `applies to https:// targets only: ${listed} ${plain.length === 1 ? 'is' : 'are'} http://, reached without TLS`
    return [{ path: ['upstreams', name, 'tls'], at: 'key', message }]
  })
}

/**
 * baseEjection no longer than maxEjection, one set alone against the other's default: a longer base
 * would be cut to the max without a word.
 */
function checkEjections (p: Exclude<NonNullable<UpstreamConfig['passive']>, false>, add: (key: string, message: string) => void): void {
  const base = p.baseEjection === undefined ? DEFAULT_PASSIVE.baseEjectionMs : toMs(p.baseEjection)
  const max = p.maxEjection === undefined ? DEFAULT_PASSIVE.maxEjectionMs : toMs(p.maxEjection)
  if (base <= max) return
  if (p.maxEjection === undefined) add('baseEjection', 'must not be longer than maxEjection (default 5m): set maxEjection too')
  else if (p.baseEjection === undefined) add('maxEjection', 'must not be shorter than baseEjection (default 30s): set baseEjection too')
  else add('maxEjection', 'must not be shorter than baseEjection')
}

/** Why a target URL the schema's pattern let through is not a URL: a port past 65535, or a host no URL may have. */
function unparsableUrl (url: string): string {
  const shown = hideUrlSecrets(url)
  const hostPort = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)?.[1] ?? ''
  const portText = /^(?:\[[^\]]*\]|[^:[\]]*):([^:]*)$/.exec(hostPort)?.[1]
  if (!url.includes('@') && portText !== undefined && !/^\d*$/.test(portText)) return PORT_NOT_A_NUMBER
  const port = /:(\d+)\/?$/.exec(url)?.[1]
  if (port !== undefined && Number(port) > 65_535) return `"${shown}": port ${port} is out of range (at most 65535)`
  return `"${shown}" is not a valid URL: check its host (a name, an IPv4 address or an [IPv6] one, no spaces) and port`
}
