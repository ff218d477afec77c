import { promises as dns, type SrvRecord } from 'node:dns'
import type { Logger } from 'pino'
import { toMs } from '../config/duration.ts'
import { answerBy, by, dnsAnswers, inTurn, LateError, LOOKUP_DEADLINE_MS, NotLookedUpError, NoTurnError, once, roundEnd } from './dns-deadline.ts'
import type { TargetAddress, Upstream } from './upstream.ts'

/** The lookups discovery needs; node:dns by default. */
export interface Resolver {
  /** A/AAAA through the system resolver (so /etc/hosts counts, as for any other program); one at a time (see inTurn). */
  lookup (host: string): Promise<Array<{ address: string, family: number }>>
  resolveSrv (name: string): Promise<SrvRecord[]>
  /**
   * Whether the system resolver would answer `name` at once (see dnsAnswers), asked by `end` without
   * a thread, dropped when `signal` aborts: asked of a name whose lookup held the thread last time
   * (see lookup). Without it, every name is looked up at each round, slow or not.
   */
  answers? (name: string, end: number, signal: AbortSignal): Promise<boolean>
}

export const systemResolver = {
  // Either family: getaddrinfo waits for both the A and the AAAA answer (see dnsAnswers).
  lookup: host => dns.lookup(host, { all: true }),
  resolveSrv: name => dns.resolveSrv(name),
  answers: dnsAnswers
} satisfies Resolver

const DEFAULT_INTERVAL_MS = 30_000

/**
 * In a cluster worker, the addresses the primary's discovery has for an entry, by followKey
 * (undefined: none yet): taken instead of resolving, so that a worker sends only to addresses the
 * primary's health checks probe (see followPrimary).
 */
let fromPrimary: ((key: string) => readonly TargetAddress[] | undefined) | undefined
/** The rounds of the entries resolved (or followed) in this process: run at once when the primary's addresses change. */
const running = new Set<() => Promise<void>>()
/**
 * Aborts the Resolver.answers queries under way once no entry is resolved any more: they would hold
 * the process's exit till their round's end. Not at each stop: a lookup is shared by every entry of
 * its name (see once), of any config.
 */
let queries = new AbortController()

/** What the primary's addresses for an entry go by: the entry (name, weight, interval) of the upstream of that name, in any config. */
export const followKey = (upstream: string, entry: unknown): string => `${upstream}\u0000${JSON.stringify(entry)}`

/**
 * In a cluster worker: from now on DNS entries take the addresses `addresses` gives (the primary's,
 * by followKey) rather than resolving the name; one the primary has none for (its lookups failed)
 * keeps its last ones, as a failed lookup does. Returns what runs every entry's round at once, for
 * when the primary's addresses have changed.
 */
export function followPrimary (addresses: (key: string) => readonly TargetAddress[] | undefined): () => void {
  fromPrimary = addresses
  return () => { for (const round of running) void round() }
}

/**
 * Most targets one entry makes: each is a connection pool and a health check, so a name answering
 * thousands of addresses would stall the gateway. Past it, the first addresses in URL order are used
 * (the same ones at each round, whatever order DNS gives them in).
 */
export const MAX_ADDRESSES = 256

/**
 * Keeps the targets of `resolve: dns` entries in step with DNS: every dnsInterval the name is
 * resolved again and the upstream's targets for that entry become one per address. A name starting
 * with `_` is an SRV name (_http._tcp.orders.internal): see resolveSrv. A failed or empty lookup keeps
 * the last answer; an address that cannot be a target is left out. One round at a time, each ended
 * by its deadline (see roundEnd) so that it holds neither `ready` nor the next round: a name not
 * answered by then counts as a failed lookup (an SRV target keeps its last addresses), its lookup
 * going on, which the next rounds share rather than start another (see once), and whose late answer
 * the next round late too takes (see answerBy). A name whose lookup held the thread is looked up
 * again only once /etc/hosts or the DNS servers answer it, asked without a thread, or at longer and
 * longer waits (see lookup).
 * At most MAX_ADDRESSES per entry. A failed round is logged when a streak of failures begins, and
 * when the name resolves again (with how many rounds failed): a name down for hours would log every
 * round. Each lookup is counted in `upstream.dnsLookups` (the metrics read it).
 * `ready` settles after the first round. An entry `followed` gives addresses for is not resolved: it
 * takes those at each round (a config a reload replaced follows the discovery of the one in
 * service). An entry whose first lookup fails or is empty takes the addresses `previous` gives (on
 * reload, the config replaced had some: the name itself is no better than the last answer); asked
 * only in the first round, so that the replaced config is not held. `answered` says whether an
 * entry has had addresses (resolved, followed or taken from `previous`) yet. In a cluster worker,
 * an entry nothing `followed` gives addresses for follows the primary's (see followPrimary).
 */
export function startDnsDiscovery (upstream: Upstream, log: Logger, resolver: Resolver = systemResolver,
  followed?: (source: number) => readonly TargetAddress[] | undefined,
  previous?: (source: number) => readonly TargetAddress[] | undefined): DnsDiscovery {
  const timers: NodeJS.Timeout[] = []
  const ours: Array<() => Promise<void>> = []
  const answered = new Set<number>()
  let stopped = false
  let inherited = previous
  const rounds = upstream.config.targets.map((entry, source) => {
    if (entry.resolve !== 'dns') return undefined
    const origin = new URL(entry.url)
    const intervalMs = entry.dnsInterval === undefined ? DEFAULT_INTERVAL_MS : toMs(entry.dnsInterval)
    // An SRV target that does not resolve (or not in time) is logged when it starts not to, not every round.
    let unresolved = new Set<string>()
    let unresolvedNow = new Set<string>()
    const skipped = (name: string, err: unknown) => {
      unresolvedNow.add(name)
      if (unresolved.has(name)) return
      if (err instanceof LateError) log.warn({ upstream: upstream.name, name: origin.hostname, target: name, err }, 'DNS discovery: an SRV target did not answer in time; keeping its last addresses')
      else log.warn({ upstream: upstream.name, name: origin.hostname, target: name, err }, 'DNS discovery: an SRV target does not resolve; using the others')
    }
    const known = new Map<string, Address[]>()
    const late = new Map<string, unknown>()
    let resolving = false
    let unusable = ''
    let cut = 0
    /** Rounds failed in a row: the first is logged, the end of the streak too. */
    let failed = 0
    const key = followKey(upstream.name, entry)
    const round = async () => {
      if (resolving) return
      resolving = true
      const following = followed?.(source) ?? (fromPrimary === undefined ? undefined : fromPrimary(key) ?? [])
      try {
        unresolvedNow = new Set()
        const found = following ?? await resolveEntry({ resolver, from: performance.now(), end: roundEnd(intervalMs), skipped, behind: unresolved, known, late }, origin, entry.weight ?? 1)
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
        const all = [...new Map(usable.map(a => [a.url, a])).values()]
        const over = all.length > MAX_ADDRESSES ? all.length : 0
        // Logged when the number of addresses cut from changes, not every round.
        if (over !== cut) {
          cut = over
          if (over > 0) log.warn({ upstream: upstream.name, name: origin.hostname, found: over, used: MAX_ADDRESSES }, `DNS discovery: more than ${MAX_ADDRESSES} addresses; using the first ${MAX_ADDRESSES}`)
        }
        const unique = over > 0 ? all.sort((a, b) => a.url < b.url ? -1 : 1).slice(0, MAX_ADDRESSES) : all
        if (!stopped) { upstream.setTargets(source, unique); answered.add(source) }
        if (following === undefined) upstream.dnsLookups.ok++
        if (failed > 0) log.info({ upstream: upstream.name, name: origin.hostname, failedRounds: failed }, 'DNS discovery: resolving again')
        failed = 0
      } catch (err) {
        const last = answered.has(source) || stopped ? undefined : inherited?.(source)
        if (last !== undefined && last.length > 0) { upstream.setTargets(source, last); answered.add(source) }
        // Not looked up yet (other names had the thread): nothing failed; a later round takes its answer (see answerBy).
        if (err instanceof NoTurnError) return
        if (following === undefined) upstream.dnsLookups.failed++
        if (failed++ === 0) log.warn({ upstream: upstream.name, name: origin.hostname, err }, 'DNS discovery failed; keeping the last targets')
      } finally {
        if (following === undefined) unresolved = unresolvedNow
        resolving = false
      }
    }
    timers.push(setInterval(round, intervalMs).unref())
    ours.push(round)
    running.add(round)
    return round()
  })
  return {
    ready: Promise.all(rounds).then(() => { inherited = undefined }),
    stop: () => {
      stopped = true
      for (const t of timers) clearInterval(t)
      for (const r of ours) running.delete(r)
      if (running.size === 0) { queries.abort(); queries = new AbortController() }
    },
    answered: source => answered.has(source)
  }
}

export interface DnsDiscovery { ready: Promise<void>, stop (): void, answered (source: number): boolean }

type Address = { address: string }

/** One round of an entry. */
interface Round {
  resolver: Resolver
  /** When it began and must end (performance.now() time): every wait is bounded by `end`. */
  from: number
  end: number
  /** Logs an SRV target that failed or was late (LateError); it goes behind in the next round. */
  skipped: (name: string, err: unknown) => void
  /** The SRV targets that failed or were late in the round before: looked up after the others. */
  behind: ReadonlySet<string>
  /** The last addresses of each SRV target, for one that is late. */
  known: Map<string, Address[]>
  /** The name's (or SRV name's) answer that came after its round stopped waiting (see answerBy). */
  late: Map<string, unknown>
}

/** Lookups that had their turn (see inTurn), with when: one a round stops waiting for before that was not made. */
const begun = new WeakMap<Promise<unknown>, number>()

/** A name not looked up: its lookup held the thread last time, and the DNS still does not answer it (see lookup). */
class SilentError extends NotLookedUpError {}

/** Most a slow name waits to be looked up unasked (see lookup), unless three times its hold is more. */
const SLOW_RETRY_MAX_MS = 5 * 60_000

/** A slow name (see lookup). */
interface Mark {
  /** When it is looked up again unasked (performance.now() time). */
  retry: number
  /** How long it waits for that: doubled each time it is slow again. */
  wait: number
  /** How long its last lookup held the thread. */
  hold: number
}

/** By resolver, the slow names (see lookup). */
const slowNames = new WeakMap<Resolver, Map<string, Mark>>()

/**
 * The lookup of `name` by `end`: one under way at a time (see once), begun in its turn (see inTurn).
 * One that held the thread longer than it had (the time left when it began; half the time left when
 * it was asked at least: see held)
 * marks the name slow, whatever its outcome: the system resolver holds a lookup the DNS never answers
 * ~10 s (30 s with 3 nameservers), one whose AAAA query it drops ~15 s, and no other discovery lookup
 * begins meanwhile. A slow name's next lookups ask first whether the system resolver would answer it
 * at once (Resolver.answers: /etc/hosts, then every DNS server, no thread, no wait past `end`), and
 * take the thread only once it would (so a name back is looked up within a round), or at its retry
 * (see held), failing with a SilentError till then (a late answer still counts: see answerBy). The
 * answer is still the system resolver's (search domains, /etc/hosts), which the queries are not.
 * A lookup that took no longer than it had unmarks the name.
 */
function lookup (resolver: Resolver, name: string, end: number): Promise<Address[]> {
  let slow = slowNames.get(resolver)
  if (slow === undefined) slowNames.set(resolver, slow = new Map())
  const marks = slow
  const called = performance.now()
  const work = once(resolver, `A ${name}`, async () => {
    const mark = marks.get(name)
    if (mark !== undefined && resolver.answers !== undefined && performance.now() < mark.retry) {
      // Under way, not waiting for a turn: past `end` a failure, as a lookup on the thread is.
      begun.set(work, performance.now())
      if (!await resolver.answers(name, end, queries.signal)) throw new SilentError('the DNS did not answer this name at once, and still does not')
      begun.delete(work)
    }
    let began: number | undefined
    try {
      return await inTurn(() => { began = performance.now(); begun.set(work, began); return resolver.lookup(name) })
    } finally {
      if (began !== undefined) held(marks, name, performance.now() - began, Math.max(end - began, (end - called) / 2))
    }
  })
  return work
}

/**
 * After a lookup of `name` that held the thread `hold` ms, of `allowed`: within it, the name is
 * unmarked; past it, marked slow, looked up unasked (see lookup) after three times its hold at least,
 * twice as long as last time if it was slow then too, up to SLOW_RETRY_MAX_MS (30 s, 60 s, ... 5 min
 * for a hold of 10 s), and never within three holds of another slow name's unasked lookup: so their
 * retries leave the thread (which every other name's lookups wait for) free three times as long as
 * they hold it, and longer and longer while they stay slow.
 */
function held (marks: Map<string, Mark>, name: string, hold: number, allowed: number): void {
  const last = marks.get(name)
  marks.delete(name)
  if (hold <= allowed) return
  const now = performance.now()
  const wait = Math.max(3 * hold, last === undefined ? 0 : Math.min(2 * last.wait, SLOW_RETRY_MAX_MS))
  let retry = now + wait
  for (const [other, m] of [...marks].sort(([, a], [, b]) => a.retry - b.retry)) {
    // Long past its time: the name is no longer looked up.
    if (m.retry + SLOW_RETRY_MAX_MS < now) marks.delete(other)
    else if (retry < m.retry + 4 * m.hold && m.retry < retry + 4 * hold) retry = m.retry + 4 * m.hold
  }
  marks.set(name, { retry, wait, hold })
}

async function resolveEntry (round: Round, origin: URL, weight: number): Promise<TargetAddress[]> {
  const { protocol, hostname } = origin
  if (!hostname.startsWith('_')) {
    const port = origin.port === '' ? '' : `:${origin.port}`
    const work = lookup(round.resolver, hostname, round.end)
    try {
      return (await answerBy(round.resolver, round.late, `A ${hostname}`, () => work, round.end)).map(a => ({ url: `${protocol}//${hostport(a.address, port)}`, host: origin.host, weight }))
    } catch (err) {
      // Still waiting for its turn behind other names, or begun with less than half the round left: late
      // for its turn, not for the DNS, so not failed (see round).
      const since = begun.get(work)
      if (err instanceof LateError && (since === undefined || round.end - since < (round.end - round.from) / 2)) throw new NoTurnError('waiting for its turn to be looked up')
      throw err
    }
  }
  return resolveSrv(round, protocol, hostname, srvDomain(origin), weight)
}

/**
 * The Host (and TLS name) of the targets an SRV name gives: the domain the service was looked up
 * in (_http._tcp.api.test: api.test), as RFC 6125 has clients check it, never the records' target
 * names, which whoever can answer the SRV query chooses; with the URL's port if it has one (the
 * records' ports are where to connect, not part of the name the client asked for).
 */
function srvDomain (origin: URL): string {
  const domain = origin.hostname.replace(/^(_[^.]*\.)+/, '')
  // Only service labels (_a._b): the name itself, which no certificate carries.
  if (domain === '' || domain.startsWith('_')) return origin.host
  return origin.port === '' ? domain : `${domain}:${origin.port}`
}

/**
 * The targets of the lowest priority whose records resolve (RFC 2782: the lowest priority the client
 * can reach); a record whose name does not resolve is skipped (and logged). A record with target "."
 * says the service is not available there (RFC 2782): it is ignored, and an answer of only such records
 * counts as a failed lookup, which keeps the last targets. SRV weights are not used: every target
 * gets the entry's `weight`. Every target's `host` is `domain` (see srvDomain). A name not answered
 * by its deadline (LOOKUP_DEADLINE_MS, or the round's end) keeps the addresses it last had, if any,
 * its lookup going on: a name is late for the DNS, not known to be gone.
 */
async function resolveSrv (round: Round, protocol: string, name: string, domain: string, weight: number): Promise<TargetAddress[]> {
  const { resolver, end, known } = round
  // node reports the root name "." as ''.
  const records = (await answerBy(resolver, round.late, `SRV ${name}`, () => resolver.resolveSrv(name), end)).filter(r => r.name !== '' && r.name !== '.')
  if (records.length === 0) throw new Error('the service is not available at this name (SRV target ".")')
  const names = new Set(records.map(r => r.name))
  for (const n of known.keys()) if (!names.has(n)) known.delete(n)
  const priorities = [...new Set(records.map(r => r.priority))].sort((a, b) => a - b)
  // Set by a timer, as the lookups' deadlines are (see by): answers already in count, however busy the process.
  let over = false
  const timer = setTimeout(() => { over = true }, Math.max(0, end - performance.now())).unref()
  try {
    for (const priority of priorities) {
      // Each record gives at least one address: past MAX_ADDRESSES of them, the first by name and port
      // (the same at each round) are all that can be kept, so only those are looked up.
      const chosen = records.filter(r => r.priority === priority)
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.port - b.port).slice(0, MAX_ADDRESSES)
        // Those that answered last time first, so that slow names take what is left of the round.
        .sort((a, b) => Number(round.behind.has(a.name)) - Number(round.behind.has(b.name)))
      const addresses = new Map<string, Promise<Address[]>>()
      const works = new Map<string, Promise<Address[]>>()
      const answer = (name: string) => {
        const deadline = Math.min(end, performance.now() + LOOKUP_DEADLINE_MS)
        const work = lookup(resolver, name, deadline)
        works.set(name, work)
        // An answer past the deadline is the name's latest all the same: a round it is late for again keeps it.
        work.then(a => known.set(name, a), err => { if (!(err instanceof NotLookedUpError)) known.delete(name) })
        return addresses.set(name, by(work, deadline)).get(name) as Promise<Address[]>
      }
      // One after the other: the lookups take turns anyway (see inTurn).
      const found: TargetAddress[] = []
      for (const r of chosen) {
        const targets = (addressed: Address[]) => found.push(...addressed.map(a => ({ url: `${protocol}//${hostport(a.address, `:${r.port}`)}`, host: domain, weight })))
        // Not reached in time, or not looked up (another lookup held the thread): its last addresses,
        // and not logged; behind again only if it was (the others begin the next round).
        const notReached = (err: LateError) => {
          if (round.behind.has(r.name)) round.skipped(r.name, err)
          targets(known.get(r.name) ?? [])
        }
        if (over) { notReached(new LateError('not reached before the DNS round\'s deadline')); continue }
        try {
          targets(await (addresses.get(r.name) ?? answer(r.name)))
        } catch (err) {
          if (err instanceof LateError && !begun.has(works.get(r.name) as Promise<Address[]>)) { notReached(err); continue }
          round.skipped(r.name, err)
          if (err instanceof LateError) targets(known.get(r.name) ?? [])
        }
      }
      if (found.length > 0) return found
    }
  } finally {
    clearTimeout(timer)
  }
  throw new Error('no SRV target resolves')
}

function hostport (address: string, port: string): string {
  return address.includes(':') ? `[${address}]${port}` : `${address}${port}`
}
