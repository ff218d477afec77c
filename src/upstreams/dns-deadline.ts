import { promises as dns } from 'node:dns'
import type { Resolver } from './dns-discovery.ts'
import { fileStamp, hostsFileNames } from './hosts-file.ts'

/**
 * Most a discovery round waits (less with a short dnsInterval: half of it, so that a round never
 * makes the next one skip). The config has no DNS timeout, and the system resolver's (resolv.conf:
 * 5 s × 2 attempts, per name) would hold startup and every reload, which wait for the first round.
 */
export const ROUND_DEADLINE_MS = 2_000

/** Most one SRV target's lookup holds its turn: past it the round goes on to the other names. */
export const LOOKUP_DEADLINE_MS = 1_000

/** When a round begun now must end (performance.now() time). */
export const roundEnd = (intervalMs: number): number => performance.now() + Math.min(ROUND_DEADLINE_MS, intervalMs / 2)

/** A lookup not answered by its deadline (it goes on: see once). */
export class LateError extends Error {
  readonly code = 'ETIMEOUT'
}

/** A lookup not made this time: it says nothing of the name, whose last answer stands (see answerBy). */
export class NotLookedUpError extends LateError {}

/** A lookup not begun by its deadline: another held the thread (see inTurn). */
export class NoTurnError extends NotLookedUpError {}

/** The callers waiting for the thread inTurn lets lookups take, oldest first. */
const waitingTurn: Array<() => void> = []
let turnHeld = false

/**
 * `start()` (a dns.lookup) once no other lookup started here holds the thread, in this whole process
 * (every entry, upstream and config), callers in turn, oldest first; with `end`, a NoTurnError,
 * `start` not called, if that is not before `end` (without, it waits: discovery's lookups, which
 * `once` keeps to one per name, so the queue is bounded by the names).
 * dns.lookup runs in libuv's thread pool, where such slow work takes at most half the threads (2 of
 * the default 4), and a lookup the DNS never answers holds its thread until the system resolver gives
 * up (resolv.conf: 5 s × 2 attempts), past any deadline here: one thread at most, so that one is left
 * for the proxy's own connections, which look their targets' names up there too.
 */
export async function inTurn<T> (start: () => Promise<T>, end?: number): Promise<T> {
  if (turnHeld) {
    await new Promise<void>((resolve, reject) => {
      const go = () => { clearTimeout(timer); resolve() }
      const timer = end === undefined
        ? undefined
        : setTimeout(() => {
          waitingTurn.splice(waitingTurn.indexOf(go), 1)
          reject(new NoTurnError('another DNS lookup held the thread until the deadline'))
        }, Math.max(0, end - performance.now())).unref()
      waitingTurn.push(go)
    })
  }
  turnHeld = true
  try {
    return await start()
  } finally {
    // Handed to the next caller waiting, still held.
    const next = waitingTurn.shift()
    if (next === undefined) turnHeld = false
    else next()
  }
}

/** `work`'s outcome, or past `end` (performance.now() time) a LateError; `work` itself goes on. */
export async function by<T> (work: Promise<T>, end: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    // Unref'd: `work` holds the process if anything does, not the wait for it.
    timer = setTimeout(() => reject(new LateError('no answer before the DNS round\'s deadline')), Math.max(0, end - performance.now())).unref()
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The lookups still under way, by resolver and `key`. */
const pending = new WeakMap<Resolver, Map<string, Promise<unknown>>>()

/**
 * `start()`, unless the lookup of `key` is still under way (a round stopped waiting for it, in this
 * or another entry or config): then that one. It still takes a thread, so later rounds share it
 * rather than pile more up.
 */
export function once<T> (resolver: Resolver, key: string, start: () => Promise<T>): Promise<T> {
  let ours = pending.get(resolver)
  if (ours === undefined) pending.set(resolver, ours = new Map())
  const under = ours.get(key) as Promise<T> | undefined
  if (under !== undefined) return under
  const work = Promise.resolve().then(start)
  const map = ours
  const done = () => { map.delete(key) }
  work.then(done, done)
  map.set(key, work)
  return work
}

/**
 * The answer of the lookup of `key` (see once) by `end`. One that comes after its round stopped
 * waiting is kept in `late`, for the next round whose wait ends too: a DNS that always answers past
 * the deadline (a dead first nameserver costs 5 s) still gives the entry its addresses, a round late.
 */
export async function answerBy<T> (resolver: Resolver, late: Map<string, unknown>, key: string, start: () => Promise<T>, end: number): Promise<T> {
  const work = once(resolver, key, start)
  let waiting = true
  // Any answer or failure supersedes a late answer (a name DNS no longer has loses its addresses);
  // a lookup not made (NotLookedUpError) says nothing of the name.
  work.then(answer => { if (!waiting) late.set(key, answer) }, err => { if (!(err instanceof NotLookedUpError)) late.delete(key) })
  try {
    const answer = await by(work, end)
    late.delete(key)
    return answer
  } catch (err) {
    if (!(err instanceof LateError)) { late.delete(key); throw err }
    if (!late.has(key)) throw err
    const answer = late.get(key) as T
    late.delete(key)
    return answer
  } finally {
    waiting = false
  }
}

/** DNS query errors that are no answer at all: no server said anything by the deadline. */
export const NO_ANSWER = new Set(['ETIMEOUT', 'ECANCELLED'])

const RESOLV_CONF = '/etc/resolv.conf'

/** resolv.conf as node:dns read it at start, then as last read (with its servers) once it changed. */
let resolvConf: { stamp: Promise<string>, servers?: string[] } = { stamp: fileStamp(RESOLV_CONF) }

/**
 * The DNS servers the system resolver asks: node:dns's (dns.setServers counts) until
 * /etc/resolv.conf changes, which glibc reads again then, and node:dns never: from then on the
 * file's, read again at each change (a new c-ares channel reads it).
 */
export async function dnsServers (): Promise<string[]> {
  const stamp = await fileStamp(RESOLV_CONF)
  if (stamp !== await resolvConf.stamp) resolvConf = { stamp: Promise.resolve(stamp), servers: new dns.Resolver().getServers() }
  return resolvConf.servers ?? dns.getServers()
}

/**
 * A c-ares resolver: DNS queries, no thread, to the servers the system resolver asks (see
 * dnsServers), each once for `timeoutMs`. It asks a name as written: resolv.conf's search domains
 * and ndots, /etc/hosts and nsswitch.conf are the system resolver's (dns.lookup) alone.
 */
export async function dnsQueries (timeoutMs: number): Promise<dns.Resolver> {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 })
  resolver.setServers(await dnsServers())
  return resolver
}

/**
 * Whether the system resolver would answer `name` without holding its thread till it gives up: it is
 * in `hostsFile`, or DNS servers answer both an A and an AAAA query for it by `end` (an address,
 * none, a refusal: any answer). Both: discovery's lookups ask for either family, and getaddrinfo then
 * waits for both answers (a DNS that drops AAAA queries held it ~15 s, for the A it had at once).
 * Each server is asked apart, all at once, each with the time left: one resolver for all asks them
 * in turn, and a dead first server (what the system resolver gets past in 5 s) took the whole time.
 * The queries are cancelled at `end`, once both are answered, or when `signal` aborts, so that a DNS
 * that never answers holds nothing, the process's exit included.
 */
export async function dnsAnswers (name: string, end: number, signal?: AbortSignal, hostsFile?: string): Promise<boolean> {
  if ((await hostsFileNames(hostsFile)).has(name.toLowerCase())) return true
  const servers = await dnsServers()
  const ms = Math.round(end - performance.now())
  if (ms <= 0 || signal?.aborted === true) return false
  const resolvers = servers.map(server => {
    const resolver = new dns.Resolver({ timeout: ms, tries: 1 })
    resolver.setServers([server])
    return resolver
  })
  const cancel = () => { for (const resolver of resolvers) resolver.cancel() }
  const timer = setTimeout(cancel, ms).unref()
  signal?.addEventListener('abort', cancel)
  const answered = (query: Promise<unknown>) => query.then(() => true, (err: NodeJS.ErrnoException) => {
    if (NO_ANSWER.has(err.code ?? '')) throw err
    return true
  })
  try {
    await Promise.all([
      Promise.any(resolvers.map(r => answered(r.resolve4(name)))),
      Promise.any(resolvers.map(r => answered(r.resolve6(name))))
    ])
    return true
  } catch {
    return false
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', cancel)
    cancel()
  }
}
