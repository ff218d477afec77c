import type { Runtime } from '../runtime/runtime.ts'
import type { BreakerState } from '../upstreams/circuit-breaker.ts'
import { addLoads, downReasons, type TargetSnapshot } from '../upstreams/target.ts'
import type { UpstreamSnapshot } from '../upstreams/upstream.ts'
import type { WorkerPool } from './worker-pool.ts'

const SEVERITY: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 }

/**
 * GET /upstreams for the whole gateway. The targets and their active health are the primary's (its
 * checks decide health); what traffic teaches lives in the workers: a target is ejected if any worker
 * ejected it (until the latest end), its breaker is in the worst state any worker has it in, in-flight
 * requests, connections (those each worker's retired configs hold too) and retry budgets are summed,
 * latency is the highest. Workers still on another config (mid-reload) or that do not answer in
 * time are left out.
 */
export async function clusterUpstreams (view: Runtime, pool: WorkerPool): Promise<UpstreamSnapshot[]> {
  const own = view.upstreamSnapshots()
  const workers = (await pool.upstreams()).filter(r => r.hash === view.loaded.hash).map(r => r.upstreams)
  if (workers.length === 0) return own
  return own.map(u => {
    const theirs = workers.flatMap(w => w.filter(x => x.name === u.name))
    return {
      ...u,
      targets: u.targets.map(t => mergeTarget(t, theirs.flatMap(x => x.targets.filter(y => y.url === t.url)))),
      retryBudget: theirs.reduce((n, x) => n + x.retryBudget, 0)
    }
  })
}

function mergeTarget (own: TargetSnapshot, theirs: TargetSnapshot[]): TargetSnapshot {
  // ISO times (all UTC) compare as strings.
  const ejectedUntil = theirs.reduce<string | null>((latest, t) => t.ejectedUntil !== null && (latest === null || t.ejectedUntil > latest) ? t.ejectedUntil : latest, null)
  const breaker = theirs.reduce<BreakerState | null>((worst, t) => t.breaker !== null && (worst === null || SEVERITY[t.breaker] > SEVERITY[worst]) ? t.breaker : worst, own.breaker)
  // Its breaker keeps it from traffic if any worker's does (as the metric's min): open before half-open.
  const reasons = [own, ...theirs].flatMap(t => t.down)
  const blocked = reasons.includes('breaker-open') ? 'breaker-open' : reasons.includes('breaker-half-open') ? 'breaker-half-open' : undefined
  const down = downReasons(own.checksPassing, ejectedUntil !== null, blocked)
  return {
    ...own,
    healthy: down.length === 0,
    down,
    ejectedUntil,
    breaker,
    ...addLoads(theirs),
    latencyMs: Math.max(0, ...theirs.map(t => t.latencyMs)),
    retired: addLoads(theirs.map(t => t.retired))
  }
}
