import type { ListenerKey } from '../server/listen-error.ts'
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import type { TargetAddress, UpstreamSnapshot } from '../upstreams/upstream.ts'
import type { StoreSnapshot } from '../stores/store.ts'
import type { PluginAdminQuery, PluginAdminReply } from '../plugins/admin-routes.ts'
import type { BoundPorts } from '../server/start.ts'
import { workerPlace } from './worker-count.ts'

/** A plugin admin request the primary fans out to the workers. */
export interface PluginAdminCall { readonly method: string, readonly path: string, readonly query: PluginAdminQuery, readonly body: unknown }
export type PluginAdminAnswer = PluginAdminReply | { allowed: string[] }

/**
 * What the primary and its workers say over the cluster IPC channel. Every type is prefixed so
 * that messages of node:cluster and libraries on the same channel are never mistaken for ours.
 */

/** A config the primary has validated: its text, parsed again (deterministically) by each worker. */
export interface ConfigPayload {
  readonly text: string
  readonly file: string
  readonly hash: string
}

/** Target health the primary decided, for the runtime built from config `hash`. */
export interface HealthPayload { readonly hash: string, readonly upstream: string, readonly url: string, readonly healthy: boolean }

/** The addresses the primary's DNS discovery has, by followKey (see followPrimary), for the runtime of config `hash`. */
export interface AddressesPayload { readonly hash: string, readonly addresses: ReadonlyArray<readonly [string, readonly TargetAddress[]]> }

export type ToWorker =
  /**
   * `ports`: bind these where the config says 0, as the workers before did (see WorkerPool's #portsFor); read by a worker's first config only.
   * `again`: build it even if it is the config in service (the files it names may have changed).
   * `addresses`: the primary's DNS addresses for it, for its build to take.
   * `prepare`: a reload's first phase (see WorkerPool.apply): answered once built, held out of service until
   * `portcullis:commit` puts it in or `portcullis:abort` releases it.
   */
  | { type: 'portcullis:config', id: number, config: ConfigPayload, unhealthy: HealthPayload[], addresses: AddressesPayload, ports?: BoundPorts, again?: boolean, prepare?: true }
  /** Every worker has built config `hash`: into service (answered as a config is). */
  | { type: 'portcullis:commit', id: number, hash: string }
  /** Not every worker could build config `hash`: released, once built if still building. */
  | { type: 'portcullis:abort', hash: string }
  | { type: 'portcullis:health', health: HealthPayload }
  /** The primary's DNS addresses, when they change (and to a worker that starts serving). */
  | { type: 'portcullis:addresses', addresses: AddressesPayload }
  | { type: 'portcullis:metrics', id: number }
  | { type: 'portcullis:upstreams', id: number }
  | { type: 'portcullis:stores', id: number }
  | { type: 'portcullis:plugin-admin', id: number, call: PluginAdminCall }
  /** The other workers have run the call this worker asked for (see toSiblings), or did not in time. */
  | { type: 'portcullis:siblings', id: number }
  | { type: 'portcullis:shutdown' }
  /** A heartbeat: answered at once with a pong. */
  | { type: 'portcullis:ping' }

export type FromWorker =
  /** Sent once the worker listens for messages: it waits for its config. */
  | { type: 'portcullis:hello' }
  // `hash`: the config in service once this one was dealt with (none: not started). `listen`: the worker could not bind;
  // `setup`: a plugin's setup failed: for the primary to report as its own error, with what the plugin threw (`cause`:
  // as loggedThrown shows it, `name` included; its stack says where). `superseded`: a config sent later replaced it, unused.
  | { type: 'portcullis:applied', id: number, hash?: string, url?: string, ports?: BoundPorts, error?: string, listen?: { key: ListenerKey, host: string, port: number, reason: string }, setup?: { plugin: string, route: string, cause?: Record<string, unknown> }, superseded?: true }
  | { type: 'portcullis:metrics', id: number, pid: number, metrics: Array<MetricObjectWithValues<MetricValue<string>>> }
  /** The worker's upstreams, under config `hash` (none before its first config). */
  | { type: 'portcullis:upstreams', id: number, hash: string | undefined, upstreams: UpstreamSnapshot[] }
  | { type: 'portcullis:stores', id: number, pid: number, stores: StoreSnapshot[] }
  | { type: 'portcullis:plugin-admin', id: number, pid: number, answer: PluginAdminAnswer }
  /** A plugin admin call for every other serving worker (see toSiblings), answered with `portcullis:siblings`. */
  | { type: 'portcullis:siblings', id: number, call: PluginAdminCall }
  | { type: 'portcullis:pong' }

/** Replies the primary waits for, matched by id. */
export type Reply = Exclude<Extract<FromWorker, { id: number }>, { type: 'portcullis:siblings' }>

export const isOurs = <T extends { type: string }>(m: unknown): m is T =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('portcullis:')

/** toSiblings calls awaiting the primary's word, by id: each ends it (see toSiblings). */
const siblingCalls = new Map<number, () => void>()
let nextSiblingCall = 1
let listening = false
/**
 * How long a toSiblings call waits for the primary's word at most: it answers within its query
 * timeout (5 s by default); past this it is taken for gone, and the call forgotten.
 */
const SIBLINGS_GIVE_UP_MS = 60_000

/**
 * In a worker Portcullis forked, has the primary run plugin admin `call` on every other serving
 * worker (a cache's invalidation, for their memory stores): resolves once they answered, or the
 * primary stopped waiting for them. Elsewhere at once: in one process there is no other, and a
 * node:cluster worker another primary forked (PM2's cluster mode, an application's own) has no
 * siblings it knows, nor a primary that would answer.
 */
export function toSiblings (call: PluginAdminCall): Promise<void> {
  const send = process.send?.bind(process)
  if (send === undefined || workerPlace() === undefined) return Promise.resolve()
  if (!listening) {
    listening = true
    process.on('message', (m: unknown) => {
      if (isOurs<ToWorker>(m) && m.type === 'portcullis:siblings') siblingCalls.get(m.id)?.()
    })
  }
  const id = nextSiblingCall++
  return new Promise(resolve => {
    const done = (): void => {
      clearTimeout(giveUp)
      siblingCalls.delete(id)
      resolve()
    }
    const giveUp = setTimeout(done, SIBLINGS_GIVE_UP_MS).unref()
    siblingCalls.set(id, done)
    // Not sent (the primary gone): nothing to wait for.
    send({ type: 'portcullis:siblings', id, call } satisfies FromWorker, undefined, {}, (err: Error | null) => { if (err !== null) done() })
  })
}
