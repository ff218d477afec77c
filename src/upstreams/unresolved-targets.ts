import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config/schema.ts'
import type { KeyPath } from '../config/positions.ts'
import { by, LOOKUPS_AT_ONCE } from './dns-deadline.ts'

/** How long the names are waited for: the check is a hint, and DNS that does not answer is worth one too. */
export const LOOKUP_TIMEOUT_MS = 2_000

export interface UnresolvedTarget {
  readonly upstream: string
  readonly target: string
  readonly host: string
  /** The lookup's error code (ENOTFOUND, EAI_AGAIN…), ETIMEOUT when it did not answer within LOOKUP_TIMEOUT_MS. */
  readonly code: string
  /** The target's url in the config, for locate(). */
  readonly at: KeyPath
}

export const UNRESOLVED_MESSAGE = 'upstream target host name does not resolve: requests to it fail (502) until it does'

/**
 * The targets of `next` whose host name does not resolve here, of those new or changed since
 * `previous`. Names only: not IP literals nor localhost; nor `resolve: dns` entries, whose
 * discovery logs its own failures. A warning, never a rejection: the name may resolve only where
 * the gateway runs (split-horizon DNS), or soon. Each name is looked up once (see lookupErrors).
 */
export async function unresolvedTargets (next: GatewayConfig, previous?: GatewayConfig): Promise<UnresolvedTarget[]> {
  const named: Array<Omit<UnresolvedTarget, 'code'>> = []
  for (const [upstream, u] of Object.entries(next.upstreams)) {
    const before = new Set(previous?.upstreams[upstream]?.targets.filter(t => t.resolve !== 'dns').map(t => t.url))
    u.targets.forEach((t, i) => {
      if (t.resolve === 'dns' || before.has(t.url)) return
      const host = URL.parse(t.url)?.hostname.replace(/^\[(.*)\]$/, '$1')
      if (host === undefined || host === 'localhost' || isIP(host) !== 0) return
      named.push({ upstream, target: t.url, host, at: ['upstreams', upstream, 'targets', i, 'url'] })
    })
  }
  const codes = await lookupErrors([...new Set(named.map(n => n.host))])
  return named.flatMap(n => {
    const code = codes.get(n.host)
    return code === undefined ? [] : [{ ...n, code }]
  })
}

/** Logs one warning per target unresolvedTargets finds; runs in the background, holding nothing up. */
export function warnUnresolvedTargets (log: Logger, next: GatewayConfig, previous?: GatewayConfig): void {
  void unresolvedTargets(next, previous).then(found => {
    for (const { upstream, target, code } of found) log.warn({ upstream, target, code }, UNRESOLVED_MESSAGE)
  })
}

/**
 * Each name's lookup error code (ETIMEOUT for one not answered by the deadline), looked up
 * LOOKUPS_AT_ONCE at a time: dns.lookup takes a thread of the pool zlib and crypto share. All end
 * within LOOKUP_TIMEOUT_MS; names not begun by then are not checked.
 */
async function lookupErrors (hosts: string[]): Promise<Map<string, string>> {
  const codes = new Map<string, string>()
  const end = performance.now() + LOOKUP_TIMEOUT_MS
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < hosts.length && performance.now() < end) {
      const host = hosts[next++] as string
      try {
        await by(dns.lookup(host), end)
      } catch (err) {
        codes.set(host, (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN')
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(LOOKUPS_AT_ONCE, hosts.length) }, worker))
  return codes
}
