import { promises as dns, type SrvRecord } from 'node:dns'
import type { Logger } from 'pino'
import { toMs } from '../config/duration.ts'
import type { TargetAddress, Upstream } from './upstream.ts'

/** The lookups discovery needs; node:dns by default. */
export interface Resolver {
  /** A/AAAA through the system resolver (so /etc/hosts counts, as for any other program). */
  lookup (host: string): Promise<Array<{ address: string, family: number }>>
  resolveSrv (name: string): Promise<SrvRecord[]>
}

export const systemResolver: Resolver = {
  lookup: host => dns.lookup(host, { all: true }),
  resolveSrv: name => dns.resolveSrv(name)
}

const DEFAULT_INTERVAL_MS = 30_000

/**
 * Keeps the targets of `resolve: dns` entries in step with DNS: every dnsInterval the name is
 * resolved again and the upstream's targets for that entry become one per address. A name starting
 * with `_` is an SRV name (_http._tcp.orders.internal): see resolveSrv. A failed or empty lookup keeps
 * the last answer; an address that cannot be a target is left out. One round at a time: a round
 * still resolving when the next is due skips it, so a slow answer never lands after a newer one.
 * `ready` settles after the first round. An entry `followed` gives addresses for is not resolved: it
 * takes those at each round (a config a reload replaced follows the discovery of the one in
 * service). An entry whose first lookup fails or is empty takes the addresses `previous` gives (on
 * reload, the config replaced had some: the name itself is no better than the last answer); asked
 * only in the first round, so that the replaced config is not held. `answered` says whether an
 * entry has had addresses (resolved, followed or taken from `previous`) yet.
 */
export function startDnsDiscovery (upstream: Upstream, log: Logger, resolver: Resolver = systemResolver,
  followed?: (source: number) => readonly TargetAddress[] | undefined,
  previous?: (source: number) => readonly TargetAddress[] | undefined): DnsDiscovery {
  const timers: NodeJS.Timeout[] = []
  const answered = new Set<number>()
  let stopped = false
  let inherited = previous
  const rounds = upstream.config.targets.map((entry, source) => {
    if (entry.resolve !== 'dns') return undefined
    const origin = new URL(entry.url)
    const skipped = (name: string, err: unknown) => log.warn({ upstream: upstream.name, name: origin.hostname, target: name, err }, 'DNS discovery: an SRV target does not resolve; using the others')
    let resolving = false
    let unusable = ''
    const round = async () => {
      if (resolving) return
      resolving = true
      try {
        const found = followed?.(source) ?? await resolveEntry(resolver, origin, entry.weight ?? 1, skipped)
        if (found.length === 0) throw new Error('the name has no addresses')
        // An address no URL can hold (a zone ID: fe80::1%eth0, an SRV port above 65535) is left out,
        // not the whole answer; logged when those left out change, not every round.
        const usable = found.filter(a => URL.canParse(a.url))
        const left = found.filter(a => !usable.includes(a)).map(a => a.url).join(' ')
        if (left !== unusable) {
          unusable = left
          if (left !== '') log.warn({ upstream: upstream.name, name: origin.hostname, addresses: left.split(' ') }, 'DNS discovery: addresses that cannot be targets are left out')
        }
        if (usable.length === 0) throw new Error('no address of the name can be a target')
        const unique = [...new Map(usable.map(a => [a.url, a])).values()]
        if (!stopped) { upstream.setTargets(source, unique); answered.add(source) }
      } catch (err) {
        const last = answered.has(source) || stopped ? undefined : inherited?.(source)
        if (last !== undefined && last.length > 0) { upstream.setTargets(source, last); answered.add(source) }
        log.warn({ upstream: upstream.name, name: origin.hostname, err }, 'DNS discovery failed; keeping the last targets')
      } finally {
        resolving = false
      }
    }
    timers.push(setInterval(round, entry.dnsInterval === undefined ? DEFAULT_INTERVAL_MS : toMs(entry.dnsInterval)).unref())
    return round()
  })
  return {
    ready: Promise.all(rounds).then(() => { inherited = undefined }),
    stop: () => { stopped = true; for (const t of timers) clearInterval(t) },
    answered: source => answered.has(source)
  }
}

export interface DnsDiscovery { ready: Promise<void>, stop (): void, answered (source: number): boolean }

async function resolveEntry (resolver: Resolver, origin: URL, weight: number, skipped: (name: string, err: unknown) => void): Promise<TargetAddress[]> {
  const { protocol, hostname } = origin
  if (!hostname.startsWith('_')) {
    const port = origin.port === '' ? '' : `:${origin.port}`
    return (await resolver.lookup(hostname)).map(a => ({ url: `${protocol}//${hostport(a.address, port)}`, host: origin.host, weight }))
  }
  return resolveSrv(resolver, protocol, hostname, weight, skipped)
}

/**
 * The targets of the lowest priority whose records resolve (RFC 2782: the lowest priority the client
 * can reach); a record whose name does not resolve is skipped (and logged). A record with target "."
 * says the service is not available there (RFC 2782): it is ignored, and an answer of only such records
 * counts as a failed lookup, which keeps the last targets. SRV weights are not used: every target
 * gets the entry's `weight`.
 */
async function resolveSrv (resolver: Resolver, protocol: string, name: string, weight: number, skipped: (name: string, err: unknown) => void): Promise<TargetAddress[]> {
  // node reports the root name "." as ''.
  const records = (await resolver.resolveSrv(name)).filter(r => r.name !== '' && r.name !== '.')
  if (records.length === 0) throw new Error('the service is not available at this name (SRV target ".")')
  const priorities = [...new Set(records.map(r => r.priority))].sort((a, b) => a - b)
  for (const priority of priorities) {
    const chosen = records.filter(r => r.priority === priority)
    const resolved = await Promise.all(chosen.map(async r => {
      try {
        return (await resolver.lookup(r.name)).map(a => ({ url: `${protocol}//${hostport(a.address, `:${r.port}`)}`, host: `${r.name}:${r.port}`, weight }))
      } catch (err) {
        skipped(r.name, err)
        return []
      }
    }))
    const found = resolved.flat()
    if (found.length > 0) return found
  }
  throw new Error('no SRV target resolves')
}

function hostport (address: string, port: string): string {
  return address.includes(':') ? `[${address}]${port}` : `${address}${port}`
}
