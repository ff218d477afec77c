import { Client, request } from 'undici'
import type { HealthCheckSettings } from './settings.ts'
import type { Upstream } from './upstream.ts'
import type { Target } from './target.ts'
import { sniConnector } from './tls.ts'
import { connectorWithTimeout } from './connector.ts'

/** Told when a target crosses a threshold (healthy → unhealthy or back); `reason`: why the last check failed, when unhealthy. */
export type HealthListener = (upstream: Upstream, url: string, healthy: boolean, reason?: string) => void

/** `reason`: why the last failed check failed, for the transition to unhealthy (each failed check is not logged). */
interface TargetCheck { passes: number, fails: number, healthy: boolean, running: boolean, reason?: string }

/** The verdict other checks give `target` (of `upstream`) when they check it alike; undefined: checked here. */
export type FollowedHealth = (upstream: Upstream, target: Target) => boolean | undefined

/**
 * Runs the active health checks of every upstream that has `healthCheck`: each target is asked
 * GET <path> every interval on a connection of its own (not the traffic pool, so a busy pool does
 * not fail checks). Thresholds are counted here; `onChange` is called only on a transition, so the
 * caller decides where the state goes (this process's upstreams, or workers). State is per address
 * (URL): targets with the same one share a check and its verdict. Targets start as they are; targets
 * that appear later (DNS) are picked up at the next interval. The checks of an upstream's addresses
 * are spread evenly over each interval, the first at its start: a name with hundreds of addresses
 * would have them all sent in one event-loop turn. A target `followed` gives a verdict
 * for is not checked: it takes that verdict at each interval (a config a reload replaced follows the
 * checks of the one in service). Returns a stop function.
 */
export function startHealthChecks (upstreams: Iterable<Upstream>, onChange: HealthListener, followed?: FollowedHealth): () => Promise<void> {
  const timers: NodeJS.Timeout[] = []
  /** Each upstream's timer for the next checks of its round (see spread). */
  const steps = new Map<Upstream, NodeJS.Timeout>()
  const connections = new Set<Client>()
  let stopped = false
  for (const upstream of upstreams) {
    const settings = upstream.healthCheck
    if (settings === undefined) continue
    const states = new Map<string, TargetCheck>()
    const seen = new WeakSet<Target>()
    // Checks of https:// targets trust what the traffic trusts. An https target's servername, an
    // address's too, is given with each check as with the traffic (see sniConnector). The connect (TLS
    // handshake included) is bounded by the check's timeout, not undici's 10 s.
    const connect = sniConnector(connectorWithTimeout(settings.timeoutMs, upstream.tls))
    // By address, opened by its first check, dropped by one that failed with an error (the next check
    // connects anew): undici 7 never connects again a Client that met ERR_TLS_CERT_ALTNAME_INVALID.
    // One answered with a wrong status keeps it: an overloaded target would pay a handshake per check.
    const clients = new Map<string, Client>()
    const drop = (url: string, client: Client) => {
      if (clients.get(url) === client) clients.delete(url)
      connections.delete(client)
      client.destroy().catch(() => {})
    }
    const clientOf = (url: string): Client => {
      let client = clients.get(url)
      if (client === undefined) {
        clients.set(url, client = new Client(url, { keepAliveTimeout: 60_000, connect }))
        connections.add(client)
      }
      return client
    }
    const check = (t: Target) => {
      const state = states.get(t.url)
      // Its address left (DNS) since the round began, or its last check is still running.
      if (stopped || state === undefined || state.running) return
      state.running = true
      const client = clientOf(t.url)
      void probe(client, t, settings).then(failure => {
        state.running = false
        if (failure !== undefined && failure.answered !== true) drop(t.url, client)
        // A state dropped meanwhile (the address left) no longer speaks for the address.
        if (stopped || states.get(t.url) !== state) return
        if (failure === undefined) { state.passes++; state.fails = 0 } else { state.fails++; state.passes = 0; state.reason = failure.reason }
        const next = state.healthy ? state.fails < settings.unhealthyAfter : state.passes >= settings.healthyAfter
        if (next !== state.healthy) { state.healthy = next; onChange(upstream, t.url, next, next ? undefined : state.reason) }
      })
    }
    /** Checks due[i] i × interval / due.length from now: one timer at a time, the checks due at each turn. */
    const spread = (due: readonly Target[]) => {
      clearTimeout(steps.get(upstream))
      const start = performance.now()
      const gap = settings.intervalMs / due.length
      let next = 0
      const step = () => {
        const elapsed = performance.now() - start
        for (const upTo = Math.min(due.length, Math.floor(elapsed / gap) + 1); next < upTo;) check(due[next++] as Target)
        if (next < due.length && !stopped) steps.set(upstream, setTimeout(step, Math.max(1, next * gap - elapsed)).unref())
        else steps.delete(upstream)
      }
      step()
    }
    const tick = () => {
      const checked = new Set<string>()
      const fresh: Target[] = []
      const due: Target[] = []
      for (const t of upstream.targets) {
        const verdict = followed?.(upstream, t)
        if (verdict !== undefined) {
          if (verdict !== t.healthy) onChange(upstream, t.url, verdict)
          continue
        }
        let state = states.get(t.url)
        // A target starts as it is: healthy, or unhealthy as a reload inherited it. Its first check
        // leads the round (DNS appends what it adds: the last place would leave a dead address
        // taking traffic for nearly two intervals).
        if (state === undefined) { states.set(t.url, state = { passes: 0, fails: 0, healthy: t.healthy, running: false }); fresh.push(t); checked.add(t.url) }
        // The verdict is the address's: a target new at a known address (DNS brought it back before a
        // check forgot it, or another entry has the same address) takes it, reported as its transition.
        else if (!seen.has(t) && t.healthy !== state.healthy) onChange(upstream, t.url, state.healthy, state.healthy ? undefined : state.reason)
        seen.add(t)
        if (!checked.has(t.url)) due.push(t)
        checked.add(t.url)
      }
      // Addresses gone (DNS) or now followed lose their state, and their connection (retired configs
      // would each hold one): one checked again starts over, from its target's health.
      for (const url of states.keys()) if (!checked.has(url)) states.delete(url)
      for (const [url, client] of clients) {
        if (checked.has(url)) continue
        clients.delete(url)
        connections.delete(client)
        // After its check in flight, whose verdict no longer counts (a stop may have destroyed it: nothing to close).
        client.close().catch(() => {})
      }
      spread(fresh.length === 0 ? due : [...fresh, ...due])
    }
    tick()
    timers.push(setInterval(tick, settings.intervalMs).unref())
  }
  return async () => {
    stopped = true
    for (const t of timers) clearInterval(t)
    for (const t of steps.values()) clearTimeout(t)
    await Promise.all([...connections].map(c => c.destroy()))
  }
}

/** Why a check failed; `answered`: with a status not expected, its body read (the connection is sound). */
interface Failure { reason: string, answered?: true }

/**
 * One check: undefined when the target answered an expected status, body included, within the
 * timeout; else why not ("status 503", "timeout (1000 ms)", or the error's code and message).
 * Settles at the timeout at the latest: undici heeds the signal only once connected, and a Client
 * it left in a bad state may never settle the request.
 */
async function probe (client: Client, target: Target, s: HealthCheckSettings): Promise<Failure | undefined> {
  const signal = AbortSignal.timeout(s.timeoutMs)
  const timedOut = new Promise<Failure>(resolve => signal.addEventListener('abort', () => resolve({ reason: `timeout (${s.timeoutMs} ms)` }), { once: true }))
  return Promise.race([ask(client, target, s, signal), timedOut])
}

async function ask (client: Client, target: Target, s: HealthCheckSettings, signal: AbortSignal): Promise<Failure | undefined> {
  try {
    const res = await request(target.url + s.path, {
      dispatcher: client,
      headers: { host: target.host, 'user-agent': 'portcullis-health-check' },
      servername: target.servername,
      signal
    } as Parameters<typeof request>[1])
    // With the signal, dump() rejects when it fires; without it, a body cut short by it would count as
    // read. Past the limit (undici's default) the rest is not read: the status has answered.
    await res.body.dump({ signal, limit: 131_072 })
    return s.expect[res.statusCode] === 1 ? undefined : { reason: `status ${res.statusCode}`, answered: true }
  } catch (err) {
    if (signal.aborted) return { reason: `timeout (${s.timeoutMs} ms)` }
    const { code, message } = err as { code?: string, message?: string }
    return { reason: code === undefined ? String(message) : `${code}: ${String(message)}` }
  }
}
