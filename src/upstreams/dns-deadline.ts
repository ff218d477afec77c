import type { Resolver } from './dns-discovery.ts'

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

/**
 * SRV targets looked up at once in a round: dns.lookup runs in libuv's thread pool
 * (UV_THREADPOOL_SIZE, 4 by default), which zlib, crypto and fs share, so half of it (2 by default),
 * never more than 4: more would only load the DNS servers. A lookup past LOOKUP_DEADLINE_MS gives
 * its turn up though it keeps its thread until it ends: a round whose names all hang begins
 * at most this many × ROUND_DEADLINE_MS / LOOKUP_DEADLINE_MS (4) lookups.
 */
export const LOOKUPS_AT_ONCE = Math.min(4, Math.max(1, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2)))

/** A lookup not answered by its deadline (it goes on: see once). */
export class LateError extends Error {
  readonly code = 'ETIMEOUT'
}

/** `work`'s outcome, or past `end` (performance.now() time) a LateError; `work` itself goes on. */
export async function by<T> (work: Promise<T>, end: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new LateError('no answer before the DNS round\'s deadline')), Math.max(0, end - performance.now()))
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
  work.then(answer => { if (!waiting) late.set(key, answer) }, () => { if (!waiting) late.delete(key) })
  try {
    const answer = await by(work, end)
    late.delete(key)
    return answer
  } catch (err) {
    if (!(err instanceof LateError) || !late.has(key)) throw err
    const answer = late.get(key) as T
    late.delete(key)
    return answer
  } finally {
    waiting = false
  }
}
