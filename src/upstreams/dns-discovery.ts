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
 * with `_` is an SRV name (_http._tcp.orders.internal): its lowest-priority records give host and
 * port. A failed or empty lookup keeps the last answer. `ready` settles after the first round.
 */
export function startDnsDiscovery (upstream: Upstream, log: Logger, resolver: Resolver = systemResolver): { ready: Promise<void>, stop (): void } {
  const timers: NodeJS.Timeout[] = []
  let stopped = false
  const rounds = upstream.config.targets.map((entry, source) => {
    if (entry.resolve !== 'dns') return undefined
    const origin = new URL(entry.url)
    const round = async () => {
      try {
        const found = await resolveEntry(resolver, origin, entry.weight ?? 1)
        if (found.length === 0) throw new Error('the name has no addresses')
        const unique = [...new Map(found.map(a => [a.url, a])).values()]
        if (!stopped) upstream.setTargets(source, unique)
      } catch (err) {
        log.warn({ upstream: upstream.name, name: origin.hostname, err }, 'DNS discovery failed; keeping the last targets')
      }
    }
    timers.push(setInterval(round, entry.dnsInterval === undefined ? DEFAULT_INTERVAL_MS : toMs(entry.dnsInterval)).unref())
    return round()
  })
  return {
    ready: Promise.all(rounds).then(() => {}),
    stop: () => { stopped = true; for (const t of timers) clearInterval(t) }
  }
}

async function resolveEntry (resolver: Resolver, origin: URL, weight: number): Promise<TargetAddress[]> {
  const { protocol, hostname } = origin
  if (!hostname.startsWith('_')) {
    const port = origin.port === '' ? '' : `:${origin.port}`
    return (await resolver.lookup(hostname)).map(a => ({ url: `${protocol}//${hostport(a.address, port)}`, host: origin.host, weight }))
  }
  const records = await resolver.resolveSrv(hostname)
  const best = Math.min(...records.map(r => r.priority))
  const chosen = records.filter(r => r.priority === best)
  const resolved = await Promise.all(chosen.map(async r => (await resolver.lookup(r.name)).map(a => ({
    url: `${protocol}//${hostport(a.address, `:${r.port}`)}`, host: `${r.name}:${r.port}`, weight
  }))))
  return resolved.flat()
}

function hostport (address: string, port: string): string {
  return address.includes(':') ? `[${address}]${port}` : `${address}${port}`
}
