import type { Logger } from 'pino'
import type { Reloader } from '../../reload/reloader.ts'
import type { Runtime } from '../../runtime/runtime.ts'
import type { UpstreamSnapshot } from '../../upstreams/upstream.ts'
import type { StoreSnapshot } from '../../stores/store.ts'
import type { PluginAdminQuery, PluginAdminReply } from '../../plugins/admin-routes.ts'
import type { ExpositionFormat } from '../../metrics/exposition.ts'

/** What the admin API asks of the running gateway (one process, or the primary of several). */
export interface AdminState {
  /** False until a config is in service and again while shutting down: load balancers should stop sending traffic. */
  readonly ready: boolean
  /**
   * False when the gateway runs but cannot serve: in worker mode, every worker with a config has stopped
   * answering (hung), so that a liveness probe restarts it, as it would a single process whose blocked
   * event loop does not answer the probe at all. Workers all restarting are not hung.
   */
  readonly live: boolean
  /** The runtime of the active config (in worker mode, the primary's copy, which serves no traffic). */
  readonly runtime: Runtime
  readonly reloader: Reloader
  /** The metrics exposition in `format` (in worker mode, aggregated over the workers). */
  metrics (format: ExpositionFormat): Promise<string>
  /** The upstreams' state (in worker mode, merged with what the workers learned from traffic). */
  upstreams (): Promise<UpstreamSnapshot[]>
  /**
   * The stores (in worker mode, each worker's, merged by name: the worst state wins; `missing`: the
   * workers asked that did not answer in time, left out). NoWorkerServing with none to ask, WorkersMissing when none answered.
   */
  stores (): Promise<{ stores: StoreSnapshot[], missing?: number[] }>
  /**
   * Runs a plugin's admin endpoint (in worker mode, on every worker); `allowed` when `method path` has none.
   * `call` names the call in what is logged of it after its answer (a handler that outlived its timeout).
   */
  pluginAdmin (method: string, path: string, query: PluginAdminQuery, body: unknown, call?: AdminCall): Promise<PluginAdminReply | { allowed: string[] }>
  readonly log: Logger
}

/** An admin call as its audit line names it: `callId` (for one that may change something, once that line is written), `clientIp`. */
export interface AdminCall { readonly callId?: number, readonly clientIp?: string }

/** In worker mode, what a question only the workers can answer (GET /stores) fails with while none serves. */
export class NoWorkerServing extends Error {
  static readonly code = 'workers_missing'
  constructor () { super('no worker is serving (they are restarting): none could be asked; try again shortly') }
}

/** In worker mode, what such a question fails with when no worker asked answered in time (all hung): `missing`, their pids. */
export class WorkersMissing extends Error {
  readonly missing: number[]
  constructor (missing: number[]) {
    super(`worker(s) ${missing.join(', ')} did not answer in time`)
    this.missing = missing
  }
}
