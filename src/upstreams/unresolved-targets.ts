import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config/schema.ts'
import type { KeyPath } from '../config/positions.ts'
import { by, dnsQueries, inTurn, NO_ANSWER, NoTurnError } from './dns-deadline.ts'
import { hostsFileNames } from './hosts-file.ts'

/** How long the names are waited for: the check is a hint, and DNS that does not answer is worth one too. */
export const LOOKUP_TIMEOUT_MS = 2_000

/** No lookup begins in the check's last MARGIN_MS: each one has that long at least, so an ETIMEOUT is the DNS's. */
const MARGIN_MS = 500

/** Names looked up at once: DNS queries (c-ares), no thread, but no burst on the DNS servers either. */
const AT_ONCE = 8

export interface UnresolvedTarget {
  readonly upstream: string
  readonly target: string
  readonly host: string
  /** The lookup's error code (ENOTFOUND, ESERVFAIL…), ETIMEOUT when it did not answer within LOOKUP_TIMEOUT_MS. */
  readonly code: string
  /** The target's url in the config, for locate(). */
  readonly at: KeyPath
}

export const UNRESOLVED_MESSAGE = 'upstream target host name does not resolve: requests to it fail (502) until it does'

/** The warning for names the check had no time for. */
export const uncheckedMessage = (names: number): string => `${names} target name${names === 1 ? '' : 's'} not checked (${LOOKUP_TIMEOUT_MS / 1000} s limit)`

export interface TargetCheck {
  readonly unresolved: UnresolvedTarget[]
  /** How many names were not looked up within LOOKUP_TIMEOUT_MS. */
  readonly unchecked: number
}

/**
 * The targets of `next` whose host name does not resolve here, of those new or changed since
 * `previous`. Names only: not IP literals nor localhost; nor `resolve: dns` entries, whose
 * discovery logs its own failures; nor names /etc/hosts holds, which the system resolver answers
 * before asking the DNS (a DNS that never answers made them ETIMEOUT). A warning, never a rejection:
 * the name may resolve only where the gateway runs (split-horizon DNS), or soon. Each name is looked
 * up once (see lookupErrors).
 */
export async function unresolvedTargets (next: GatewayConfig, previous?: GatewayConfig): Promise<TargetCheck> {
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
  const inHostsFile = await hostsFileNames()
  const { codes, unchecked } = await lookupErrors([...new Set(named.map(n => n.host))].filter(h => !inHostsFile.has(h)))
  const unresolved = named.flatMap(n => {
    const code = codes.get(n.host)
    return code === undefined ? [] : [{ ...n, code }]
  })
  return { unresolved, unchecked }
}

/** Logs one warning per target unresolvedTargets finds; runs in the background, holding nothing up. */
export function warnUnresolvedTargets (log: Logger, next: GatewayConfig, previous?: GatewayConfig): void {
  void unresolvedTargets(next, previous).then(({ unresolved, unchecked }) => {
    for (const { upstream, target, code } of unresolved) log.warn({ upstream, target, code }, UNRESOLVED_MESSAGE)
    if (unchecked > 0) log.warn({ unchecked }, uncheckedMessage(unchecked))
  })
}

/** What lookupError says of a name it had no time for. */
const UNCHECKED = ''

/**
 * Each name's lookup error code (ETIMEOUT for one not answered by the deadline), and how many names
 * were not checked: AT_ONCE at a time, none begun in the last MARGIN_MS, all ended (cancelled) by
 * LOOKUP_TIMEOUT_MS, so that a DNS that never answers holds neither the check nor the process.
 * DNS queries (c-ares, the servers the system resolver asks: see dnsServers), not dns.lookup:
 * libuv lets the thread pool's lookups use at most two of its threads, which the proxy's own
 * connections need, and one the DNS never answers would hold its thread ~10 s.
 */
async function lookupErrors (hosts: string[]): Promise<{ codes: Map<string, string>, unchecked: number }> {
  const codes = new Map<string, string>()
  const end = performance.now() + LOOKUP_TIMEOUT_MS
  const resolver = await dnsQueries(LOOKUP_TIMEOUT_MS)
  const cancel = setTimeout(() => resolver.cancel(), LOOKUP_TIMEOUT_MS).unref()
  let next = 0
  let unchecked = 0
  const worker = async (): Promise<void> => {
    while (next < hosts.length && performance.now() < end - MARGIN_MS) {
      const host = hosts[next++] as string
      const code = await lookupError(resolver, host, end)
      if (code === UNCHECKED) unchecked++
      else if (code !== undefined) codes.set(host, code)
    }
  }
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, hosts.length) }, worker))
  clearTimeout(cancel)
  // The other family's query of a name one family answered.
  resolver.cancel()
  return { codes, unchecked: unchecked + hosts.length - next }
}

/** `host`'s error code, undefined if it resolves, UNCHECKED if there was no time to tell. */
async function lookupError (resolver: dns.Resolver, host: string, end: number): Promise<string | undefined> {
  const errors = await Promise.any([resolver.resolve4(host), resolver.resolve6(host)])
    .then(() => undefined, (err: AggregateError) => err.errors as NodeJS.ErrnoException[])
  if (errors === undefined) return undefined
  const [first] = errors.map(e => e.code === 'ECANCELLED' ? 'ETIMEOUT' : e.code ?? 'EUNKNOWN')
  // No answer: not looked up through the system resolver, whose thread it would hold ~10 s.
  if (errors.some(e => NO_ANSWER.has(e.code ?? ''))) return first
  // The DNS has no address for it as written: the system resolver's search domains or other sources
  // (nsswitch.conf) may, as for the proxy's connects.
  if (performance.now() >= end - MARGIN_MS) return UNCHECKED
  try {
    await by(inTurn(() => dns.lookup(host), end - MARGIN_MS), end)
    return undefined
  } catch (err) {
    return err instanceof NoTurnError ? UNCHECKED : (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN'
  }
}
