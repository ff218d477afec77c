import { Agent, request } from 'undici'
import type { HealthCheckSettings } from './settings.ts'
import type { Upstream } from './upstream.ts'
import type { Target } from './target.ts'

/** Told when a target crosses a threshold (healthy → unhealthy or back). */
export type HealthListener = (upstream: Upstream, url: string, healthy: boolean) => void

interface TargetCheck { passes: number, fails: number, healthy: boolean, running: boolean }

/**
 * Runs the active health checks of every upstream that has `healthCheck`: each target is asked
 * GET <path> every interval on a connection of its own (not the traffic pool, so a busy pool does
 * not fail checks). Thresholds are counted here; `onChange` is called only on a transition, so the
 * caller decides where the state goes (this process's upstreams, or workers). Targets start as they are;
 * targets that appear later (DNS) are picked up at the next interval. Returns a stop function.
 */
export function startHealthChecks (upstreams: Iterable<Upstream>, onChange: HealthListener): () => Promise<void> {
  const agent = new Agent({ connections: 1, keepAliveTimeout: 60_000 })
  const timers: NodeJS.Timeout[] = []
  const agents = [agent]
  let stopped = false
  for (const upstream of upstreams) {
    const settings = upstream.healthCheck
    if (settings === undefined) continue
    const states = new Map<string, TargetCheck>()
    // Checks of https:// targets trust what the traffic trusts.
    const checker = upstream.tls === undefined ? agent : new Agent({ connections: 1, keepAliveTimeout: 60_000, connect: upstream.tls })
    if (checker !== agent) agents.push(checker)
    const tick = () => {
      if (states.size > upstream.targets.length) { // targets removed by DNS discovery
        for (const url of states.keys()) if (!upstream.targets.some(t => t.url === url)) states.delete(url)
      }
      for (const t of upstream.targets) {
        let state = states.get(t.url)
        // A target starts as it is: healthy, or unhealthy as a reload inherited it.
        if (state === undefined) states.set(t.url, state = { passes: 0, fails: 0, healthy: t.healthy, running: false })
        if (state.running) continue
        state.running = true
        void probe(checker, t, settings).then(ok => {
          const s = state as TargetCheck
          s.running = false
          if (stopped) return
          if (ok) { s.passes++; s.fails = 0 } else { s.fails++; s.passes = 0 }
          const next = s.healthy ? s.fails < settings.unhealthyAfter : s.passes >= settings.healthyAfter
          if (next !== s.healthy) { s.healthy = next; onChange(upstream, t.url, next) }
        })
      }
    }
    tick()
    timers.push(setInterval(tick, settings.intervalMs).unref())
  }
  return async () => {
    stopped = true
    for (const t of timers) clearInterval(t)
    await Promise.all(agents.map(a => a.destroy()))
  }
}

/** One check: true when the target answered an expected status within the timeout. */
async function probe (agent: Agent, target: Target, s: HealthCheckSettings): Promise<boolean> {
  try {
    const res = await request(target.url + s.path, {
      dispatcher: agent,
      headers: { host: target.host, 'user-agent': 'portcullis-health-check' },
      servername: target.servername,
      signal: AbortSignal.timeout(s.timeoutMs)
    } as Parameters<typeof request>[1])
    await res.body.dump()
    return s.expect[res.statusCode] === 1
  } catch {
    return false
  }
}
