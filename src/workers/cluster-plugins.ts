import { NoWorkerServing, WorkersMissing } from '../server/admin/state.ts'
import type { StoreSnapshot } from '../stores/store.ts'
import type { PluginAdminAnswer, PluginAdminCall } from './messages.ts'
import type { WorkerPool } from './worker-pool.ts'

const WORSE: Record<StoreSnapshot['state'], number> = { up: 0, connecting: 1, down: 2 }

/**
 * GET /stores for the whole gateway: each worker holds its own connections (and memory stores), so
 * a store is as bad as its worst worker's view: down if any worker cannot reach it. Memory entries,
 * bytes and tags are summed. Workers that do not answer in time (hung) are left out, named under
 * `missing`: a store only they see down would look up otherwise. Those that exited meanwhile are just left out.
 */
export async function clusterStores (pool: WorkerPool): Promise<{ stores: StoreSnapshot[], missing?: number[] }> {
  // Read as the question is sent: the pool asks the workers serving now.
  const asked = pool.servingPids
  // None to ask (all restarting), or none answered (all hung): an empty list would say there are no stores, `memory` included.
  if (asked.length === 0) throw new NoWorkerServing()
  const replies = await pool.stores()
  const missing = missingOf(pool, asked, replies)
  if (replies.length === 0) throw missing.length === 0 ? new NoWorkerServing() : new WorkersMissing(missing)
  const byName = new Map<string, StoreSnapshot>()
  for (const { stores } of replies) {
    for (const s of stores) {
      const seen = byName.get(s.name)
      if (seen === undefined) { byName.set(s.name, s); continue }
      const worst = WORSE[s.state] > WORSE[seen.state] ? s : seen
      byName.set(s.name, {
        ...worst,
        lastError: worst.lastError ?? seen.lastError ?? s.lastError,
        ...(s.entries === undefined ? {} : { entries: (seen.entries ?? 0) + s.entries, bytes: (seen.bytes ?? 0) + (s.bytes ?? 0), tags: (seen.tags ?? 0) + (s.tags ?? 0) }),
        ...nodesDown(seen, s)
      })
    }
  }
  const stores = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))
  return missing.length === 0 ? { stores } : { stores, missing }
}

/**
 * The workers `asked` that did not reply and still run: one that exited meanwhile is not missing
 * (its connections and memory stores ended with it; its replacement starts on none).
 */
function missingOf (pool: WorkerPool, asked: readonly number[], replies: ReadonlyArray<{ pid: number }>): number[] {
  const live = pool.pids
  return asked.filter(pid => live.includes(pid) && !replies.some(r => r.pid === pid))
}

/** Cluster nodes any worker found down, each once (the first worker's error for it). */
function nodesDown (a: StoreSnapshot, b: StoreSnapshot): Pick<StoreSnapshot, 'nodesDown'> {
  if (a.nodesDown === undefined && b.nodesDown === undefined) return {}
  const byNode = new Map([...b.nodesDown ?? [], ...a.nodesDown ?? []].map(n => [n.node, n]))
  return { nodesDown: [...byNode.values()].sort((x, y) => x.node.localeCompare(y.node)) }
}

/** An error answer's `error` and `message` (a worker's with the worst status), for the top of the cluster's answer. */
function errorOf (body: unknown, status: number): { error?: unknown, message?: unknown } {
  if (status < 400 || typeof body !== 'object' || body === null) return {}
  const { error, message } = body as { error?: unknown, message?: unknown }
  return { ...(error === undefined ? {} : { error }), ...(message === undefined ? {} : { message }) }
}

const noneServing = (pool: WorkerPool): PluginAdminAnswer => ({ status: 503, body: { error: NoWorkerServing.code, message: new NoWorkerServing().message, workers: [], missing: pool.pids } })

/**
 * A plugin admin endpoint in worker mode runs on every worker (a purge must reach each worker's
 * memory cache). The answer: the worst status, and each worker's own answer under `workers`; for an
 * error, also its `error` and `message` at the top, as a single process answers them. When a
 * worker did not answer in time, 504 `workers_missing` naming them under `missing`: the caller
 * cannot count on the call having run there (it still may, once the worker gets to it). A worker
 * that exited before it answered is left out (its memory ended with it). With no worker serving
 * (all restarting, or all exited meanwhile), 503 `workers_missing`: the call ran nowhere. A call that could not
 * be sent at all throws (the admin API's 500): no worker is missing, it ran nowhere.
 */
export async function clusterPluginAdmin (pool: WorkerPool, call: PluginAdminCall): Promise<PluginAdminAnswer> {
  // Read as the call is sent: the pool asks the workers serving now (not those still starting).
  const asked = pool.servingPids
  if (asked.length === 0) return noneServing(pool)
  const replies = await pool.pluginAdmin(call)
  const ran = replies.flatMap(r => 'allowed' in r.answer ? [] : [{ pid: r.pid, status: r.answer.status ?? 200, body: r.answer.body ?? {} }])
  const notFound = replies.find(r => 'allowed' in r.answer)?.answer
  if (ran.length === 0 && notFound !== undefined) return notFound
  const missing = missingOf(pool, asked, replies)
  if (missing.length === 0) {
    // Every worker asked exited before it answered: the call ran nowhere.
    if (replies.length === 0) return noneServing(pool)
    if (ran.length === 0) return { allowed: [] }
    const status = Math.max(...ran.map(r => r.status))
    return { status, body: { ...errorOf(ran.find(r => r.status === status)?.body, status), workers: ran } }
  }
  return {
    status: Math.max(504, ...ran.map(r => r.status)),
    body: { error: 'workers_missing', message: `worker(s) ${missing.join(', ')} did not answer in time: the call may not have run there yet`, workers: ran, missing }
  }
}
