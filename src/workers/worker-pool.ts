import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import type { Logger } from 'pino'
import { ListenError } from '../server/listen-error.ts'
import { PluginSetupError } from '../plugins/setup-error.ts'
import type { BoundPorts } from '../server/start.ts'
import { isOurs, type AddressesPayload, type ConfigPayload, type FromWorker, type HealthPayload, type Reply, type ToWorker, type PluginAdminCall } from './messages.ts'
import { WORKER_ENV } from './worker-count.ts'

/** A place for one worker process, kept across its restarts. */
interface Slot {
  readonly index: number
  worker: Worker | undefined
  startedAt: number
  /** Quick exits in a row: each doubles the delay before the next restart. */
  crashes: number
  /** The config the worker serves; undefined until it has applied its first. */
  hash: string | undefined
  /**
   * Whether it did not answer a config (or a commit) in time: it may still put that one in service when its
   * build ends (unless sent another meanwhile, see runWorker). Cleared by its next answer, which says what it serves.
   */
  unsure: boolean
  /** Whether #resync is bringing it back to the current config. */
  resyncing: boolean
  restart: NodeJS.Timeout | undefined
  /** When the worker last sent anything (a heartbeat's answer, most often); undefined until its hello. */
  answeredAt: number | undefined
  /** Whether it was last logged unresponsive (see #beat). */
  unresponsive: boolean
  /** Why the pool killed it, or its first build failed, for the exit's log line. */
  killedFor: string | undefined
  /** Why it is restarted (see RestartReason): undefined, it crashed. */
  why: RestartReason | undefined
  /** Whether its worker was sent its first config without ports to bind: on port 0, it shares the listener first bound (see #portsFor). */
  onZero: boolean
}

/**
 * Why a worker is restarted: it exited on its own (`crashed`), the heartbeat found it hung
 * (`unresponsive`), or it could not set up its config (`setup_failed`: a plugin's setup failed, the
 * listener could not be bound, or it could not build the config in service again).
 */
export type RestartReason = 'crashed' | 'unresponsive' | 'setup_failed'
export const RESTART_REASONS: readonly RestartReason[] = ['crashed', 'unresponsive', 'setup_failed']

export interface WorkerPoolOptions {
  readonly count: number
  readonly log: Logger
  /** The targets the primary knows to be unhealthy under config `hash`, for a worker that (re)starts. */
  readonly unhealthy: (hash: string) => HealthPayload[]
  /** The primary's DNS addresses under config `hash`, for a worker to build it on. */
  readonly addresses: (hash: string) => AddressesPayload
  /** Whether the gateway was asked to stop while it starts (see holdStartupSignals): a worker exiting then is not restarted. */
  readonly stopAsked?: () => boolean
  /** Called as a worker's restart is scheduled. */
  readonly restarting?: (reason: RestartReason) => void
  /** An error of a worker's, as it may be logged: a plugin's setup error may quote the config's secrets. */
  readonly shown?: (err: Error) => Error
}

/**
 * Building a runtime may wait on plugin setup and DNS: generous (plugin setups run one after the
 * other: a build can take several server.pluginTimeout). PORTCULLIS_WORKER_APPLY_TIMEOUT_MS shortens it in tests.
 * Also how long a worker building a config it was sent may be silent (see #silenceMs).
 */
const APPLY_TIMEOUT_MS = Number(process.env.PORTCULLIS_WORKER_APPLY_TIMEOUT_MS ?? 120_000)
/** A worker's first build at start is waited for this many apply timeouts (6 minutes by default), then the start fails. */
const START_PATIENCE = 3
/**
 * For the admin API's questions: a stuck worker is left out of the answer rather than hang it.
 * PORTCULLIS_WORKER_QUERY_TIMEOUT_MS shortens it in tests.
 */
const QUERY_TIMEOUT_MS = Number(process.env.PORTCULLIS_WORKER_QUERY_TIMEOUT_MS ?? 5_000)
/** A worker up this long counts as stable: its next crash restarts it at once. */
const STABLE_AFTER_MS = 10_000
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 30_000
const STOPPING = 'the gateway is stopping'
/**
 * The primary pings every worker this often (one small IPC message); PORTCULLIS_WORKER_HEARTBEAT_MS
 * shortens it in tests. A worker that has not answered for UNRESPONSIVE_MS (its event loop blocked, the
 * process stopped) does not count as responsive: readiness goes by the responsive ones, liveness too
 * but for a worker building a config, which is given longer (see #silenceMs). One silent for HUNG_MS is
 * killed, and restarted as after a crash: generous, for a long GC pause or a busy loop that ends must not
 * cost a worker its requests in flight.
 */
const HEARTBEAT_MS = Number(process.env.PORTCULLIS_WORKER_HEARTBEAT_MS ?? 1_000)
const UNRESPONSIVE_MS = 5 * HEARTBEAT_MS
const HUNG_MS = 30 * HEARTBEAT_MS

/**
 * A message that could not be sent at all (it cannot be serialized): an error of the caller's, the
 * same for every worker, not a worker missing its answer.
 */
class NotSent extends Error {
  constructor (worker: Worker, cause: Error) {
    super(`the message could not be sent to worker ${worker.process.pid}: ${cause.message}`, { cause })
  }
}

/** No answer in time: the worker may still be at it. */
export class NoAnswer extends Error {}

/** A worker gone before it answered, or before it served its first config. */
export class WorkerExited extends Error {}

/** A worker's PluginSetupError cause (see runWorker) as loggedThrown made it: `name` not enumerable, so pino shows it once, as the type. */
function thrownAgain ({ name, ...rest }: Record<string, unknown>): object {
  return Object.defineProperty(Object.assign(Object.create(null) as object, rest), 'name', { value: name })
}

const samePorts = (a: BoundPorts, b: BoundPorts): boolean => a.listen === b.listen && a.h2c === b.h2c && a.redirect === b.redirect

/**
 * The worker processes (node:cluster; they share the listening port). Keeps `count` of them
 * running, restarting a crashed one with exponential backoff, and keeps every one on the current
 * config: a worker applies it when it starts, and again whenever it changes.
 */
export class WorkerPool {
  readonly #o: WorkerPoolOptions
  readonly #slots: Slot[]
  /** Questions to workers awaiting their answer; `build`: a config to build. */
  readonly #pending = new Map<number, { worker: Worker, build: boolean, settle: (reply: Reply | Error) => void }>()
  #config: ConfigPayload
  #nextId = 1
  #stopping = false
  readonly #heartbeat: NodeJS.Timeout
  /** When the last beat ran (performance.now()): see #beat. */
  #beatAt = performance.now()
  /** The ports the first worker to serve bound. */
  #bound: BoundPorts | undefined
  /** apply() calls under way: #resync leaves the workers to them meanwhile. */
  #applying = 0
  /** Whether start() succeeded: a worker restarted after is waited for however long its first build takes. */
  #started = false

  constructor (config: ConfigPayload, options: WorkerPoolOptions) {
    this.#o = options
    this.#config = config
    this.#slots = Array.from({ length: options.count }, (_, index) => ({ index, worker: undefined, startedAt: 0, crashes: 0, hash: undefined, unsure: false, resyncing: false, restart: undefined, answeredAt: undefined, unresponsive: false, killedFor: undefined, why: undefined, onZero: false }))
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS).unref()
  }

  /** Workers serving traffic (hung or not: those the admin API's questions go to). */
  get serving (): number { return this.servingPids.length }

  /** Their pids. */
  get servingPids (): number[] { return this.#slots.flatMap(s => s.hash === undefined ? [] : s.worker?.process.pid ?? []) }

  /** Of those, the ones that answer: a worker silent for UNRESPONSIVE_MS serves no one, building a config or not (readiness). */
  get responsive (): number { return this.#heard(() => UNRESPONSIVE_MS) }

  /** Of those, the ones not judged hung: as responsive, but one building a config may be silent longer (see #silenceMs; liveness). */
  get alive (): number { return this.#heard(s => this.#silenceMs(s, UNRESPONSIVE_MS)) }

  /** Serving workers heard from within the silence `limitMs` allows each. */
  #heard (limitMs: (s: Slot) => number): number {
    const now = performance.now()
    return this.#slots.filter(s => s.hash !== undefined && s.answeredAt !== undefined && now - s.answeredAt < limitMs(s)).length
  }

  get pids (): number[] { return this.#slots.flatMap(s => s.worker?.process.pid ?? []) }

  /**
   * Whether a serving worker may serve another config than the current one: one that did not answer in
   * time, or has not been brought to it yet (see #resync). Applying it again then is not for nothing
   * (see Reloader's `diverged`).
   */
  get diverged (): boolean { return this.#slots.some(s => this.#outOfSync(s)) }

  /** Forks every worker; resolves with the gateway's URL once all serve, rejects if one cannot start. */
  async start (): Promise<string> {
    const urls = await Promise.all(this.#slots.map(s => this.#fork(s)))
    this.#started = true
    return urls[0] as string
  }

  /**
   * Puts `config` (already validated) in service on every worker, or on none: each builds it first,
   * keeping it out of service, and only once every one has are they all told to put it in (they do
   * at once). Throws, naming the workers that could not build it (or did not in time); every worker
   * then keeps serving the config before, its state untouched (stores, metrics, upstream health), and
   * releases its build. `again`: workers already on this text build it anew too (the files it names,
   * such as certificates, may have changed). Once the pool is stopping, throws at once: see stop().
   */
  async apply (config: ConfigPayload, options: { again?: boolean } = {}): Promise<void> {
    if (this.#stopping) throw new Error(STOPPING)
    // Workers still starting start on the config in service, and are brought to this one once it is (see #fork). One unsure is sent it even on the same text: it may be about to serve another.
    const live = this.#slots.flatMap(s => s.worker !== undefined && s.hash !== undefined && (options.again === true || s.unsure || s.hash !== config.hash) ? [{ slot: s, worker: s.worker }] : [])
    this.#applying++
    try {
      const results = await Promise.allSettled(live.map(({ slot, worker }) => this.#answer(slot, worker, config, 'prepare', { again: options.again })))
      // The pid as it was asked: a worker that exited meanwhile has left its slot.
      const failed = results.flatMap((r, i) => r.status === 'rejected' ? [`worker ${live[i]?.worker.process.pid}: ${(r.reason as Error).message}`] : [])
      if (failed.length > 0) {
        // One still building (that did not answer in time) releases its build once it ends.
        for (const { worker } of live) worker.send({ type: 'portcullis:abort', hash: config.hash } satisfies ToWorker, () => {})
        // The first failure as cause: a plugin's setup error carries where it threw.
        throw new Error(failed.join('; '), { cause: results.find(r => r.status === 'rejected')?.reason })
      }
      this.#config = config
      const committed = await Promise.allSettled(live.map(({ slot, worker }) => this.#answer(slot, worker, config, 'commit')))
      if (this.#stopping) throw new Error(STOPPING)
      // One gone meanwhile restarts on `config`; one that answered otherwise is brought to it below.
      committed.forEach((r, i) => {
        const { slot, worker } = live[i] as (typeof live)[number]
        if (r.status === 'rejected' && slot.worker === worker) this.#o.log.error({ worker: slot.index, workerPid: worker.process.pid, err: (r.reason as Error).message }, 'worker did not put in service the config every worker had built')
      })
    } finally {
      this.#applying--
    }
    for (const s of this.#slots) if (this.#outOfSync(s)) void this.#resync(s)
  }

  #outOfSync (slot: Slot): boolean {
    return slot.worker !== undefined && slot.hash !== undefined && (slot.unsure || slot.hash !== this.#config.hash)
  }

  /**
   * Brings `slot`'s worker, serving and maybe on another config than the current one (see diverged: a
   * worker restarted during a reload started on the config before it; one whose commit failed), to it,
   * in the background: one still building is asked again until it answers (the same config asked again
   * waits for that build, see runWorker); one that answers it cannot build it is restarted, to start
   * on it. An apply() meanwhile takes over.
   */
  async #resync (slot: Slot): Promise<void> {
    const worker = slot.worker
    if (worker === undefined || slot.resyncing) return
    slot.resyncing = true
    try {
      while (slot.worker === worker && !this.#stopping && this.#applying === 0 && this.#outOfSync(slot)) {
        try {
          await this.#sync(slot, worker)
        } catch (err) {
          if (err instanceof NoAnswer || slot.worker !== worker || this.#stopping || this.#applying > 0) continue
          slot.killedFor = `could not put the config in service back: ${(err as Error).message}`
          slot.why = 'setup_failed'
          this.#o.log.error({ worker: slot.index, workerPid: worker.process.pid, err: (err as Error).message }, 'worker serves another config than the gateway\'s and cannot build it: restarting it')
          worker.send({ type: 'portcullis:shutdown' } satisfies ToWorker, () => {})
          return
        }
      }
    } finally {
      slot.resyncing = false
    }
  }

  /** Sends to every serving worker, without waiting (a worker that just died misses it and restarts fresh). */
  broadcast (message: ToWorker): void {
    for (const s of this.#slots) if (s.hash !== undefined) s.worker?.send(message, () => {})
  }

  /** Each serving worker's metrics, with its pid (those that do not answer in time are left out). */
  async metrics (): Promise<Array<Pick<Extract<FromWorker, { type: 'portcullis:metrics' }>, 'pid' | 'metrics'>>> {
    const replies = await this.#query(id => ({ type: 'portcullis:metrics', id }))
    return replies.flatMap(r => r.type === 'portcullis:metrics' ? [r] : [])
  }

  /** Each serving worker's upstream snapshots (those that do not answer in time are left out). */
  async upstreams (): Promise<Array<Extract<FromWorker, { type: 'portcullis:upstreams' }>>> {
    const replies = await this.#query(id => ({ type: 'portcullis:upstreams', id }))
    return replies.flatMap(r => r.type === 'portcullis:upstreams' ? [r] : [])
  }

  /** Each serving worker's stores, with its pid (those that do not answer in time are left out). */
  async stores (): Promise<Array<Extract<FromWorker, { type: 'portcullis:stores' }>>> {
    const replies = await this.#query(id => ({ type: 'portcullis:stores', id }))
    return replies.flatMap(r => r.type === 'portcullis:stores' ? [r] : [])
  }

  /** A plugin admin endpoint run on every serving worker (their memory stores are their own). */
  async pluginAdmin (call: PluginAdminCall): Promise<Array<Extract<FromWorker, { type: 'portcullis:plugin-admin' }>>> {
    const replies = await this.#query(id => ({ type: 'portcullis:plugin-admin', id, call }))
    return replies.flatMap(r => r.type === 'portcullis:plugin-admin' ? [r] : [])
  }

  /**
   * A worker's plugin admin call for the others (see toSiblings: a cache's invalidation by a write it
   * took): run on every other serving worker, then `from` is told, once they answered or in QUERY_TIMEOUT_MS.
   */
  async #forSiblings (from: Worker, id: number, call: PluginAdminCall): Promise<void> {
    await this.#query(q => ({ type: 'portcullis:plugin-admin', id: q, call }), from).catch(() => [])
    from.send({ type: 'portcullis:siblings', id } satisfies ToWorker, () => {})
  }

  /** Asks every serving worker (but `except`); the replies that came in time. Throws if the question could not be sent (NotSent). */
  async #query (message: (id: number) => ToWorker, except?: Worker): Promise<Reply[]> {
    const serving = this.#slots.flatMap(s => s.hash === undefined || s.worker === undefined || s.worker === except ? [] : [s.worker])
    const replies = await Promise.allSettled(serving.map(w => this.#ask(w, message, QUERY_TIMEOUT_MS)))
    const notSent = replies.find(r => r.status === 'rejected' && r.reason instanceof NotSent)
    if (notSent !== undefined) throw (notSent as PromiseRejectedResult).reason
    return replies.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  }

  /**
   * Asks every worker to drain and exit, and ends those still starting at once (no restart follows);
   * kills those still running `deadlineMs` (plus a margin) later. What was asked of the workers fails
   * at once, a config being applied (which may take minutes) included: the stop does not wait for it.
   * The heartbeat goes on until they have exited: a worker draining answers it, and counts as responsive.
   */
  async stop (deadlineMs: number): Promise<void> {
    this.#stopping = true
    for (const id of this.#pending.keys()) this.#settle(id, new Error(STOPPING))
    for (const s of this.#slots) clearTimeout(s.restart)
    const live = this.#slots.flatMap(s => s.worker === undefined || s.worker.isDead() ? [] : [{ worker: s.worker, starting: s.hash === undefined }])
    const exited = Promise.all(live.map(l => once(l.worker, 'exit')))
    for (const { worker, starting } of live) {
      // One still starting serves nothing, and may not listen for messages yet (one sent now would be lost).
      if (starting) worker.process.kill('SIGTERM')
      else worker.send({ type: 'portcullis:shutdown' } satisfies ToWorker, () => {})
    }
    const kill = setTimeout(() => {
      for (const { worker: w } of live) {
        if (w.isDead()) continue
        this.#o.log.warn({ workerPid: w.process.pid }, 'worker did not stop in time; killing it')
        w.process.kill('SIGKILL')
      }
    }, deadlineMs + 5_000)
    await exited
    clearTimeout(kill)
    clearInterval(this.#heartbeat)
  }

  /** Starts the worker of `slot` and resolves with its URL once it serves the current config. */
  #fork (slot: Slot): Promise<string> {
    const worker = cluster.fork({ [WORKER_ENV.index]: String(slot.index), [WORKER_ENV.count]: String(this.#slots.length) })
    Object.assign(slot, { worker, hash: undefined, unsure: false, startedAt: performance.now(), answeredAt: undefined, unresponsive: false, killedFor: undefined, why: undefined, onZero: false })
    const pid = worker.process.pid
    this.#o.log.info({ worker: slot.index, workerPid: pid }, 'worker started')
    const hello = new Promise<void>((resolve, reject) => {
      worker.once('exit', (code: number | null, signal: string | null) => reject(new WorkerExited(`worker ${pid} exited (${signal ?? `code ${code}`}) before serving`)))
      worker.on('message', (m: unknown) => {
        if (!isOurs<FromWorker>(m)) return
        if (slot.worker === worker) slot.answeredAt = performance.now()
        if (m.type === 'portcullis:hello') resolve()
        else if (m.type === 'portcullis:siblings') void this.#forSiblings(worker, m.id, m.call)
        else if (m.type !== 'portcullis:pong') this.#settle(m.id, m)
      })
    })
    worker.on('exit', (code: number | null, signal: string | null) => this.#exited(slot, worker, code, signal))
    // A first build (at start or a restart) may outlast the apply timeout (plugin setups run one after another): it is
    // waited for (the same config asked again waits for that build, see runWorker), not left serving unknown.
    // At start, not past START_PATIENCE timeouts (a build that hangs fails the start), nor once a stop was asked.
    let patience = this.#started ? Infinity : START_PATIENCE
    const serve = (ports: BoundPorts | undefined): Promise<string> => this.#sync(slot, worker, ports).catch((err: unknown) => {
      if (!(err instanceof NoAnswer) || slot.worker !== worker || this.#stopping || this.#o.stopAsked?.() === true || --patience <= 0) throw err
      // A first build slower than the apply timeout (a large config, a loaded machine) is waited for, at start too.
      this.#o.log.warn({ worker: slot.index, workerPid: pid, waitedMs: APPLY_TIMEOUT_MS },
        this.#started ? 'restarted worker still building its config; waiting for it' : 'worker still building its first config; waiting for it')
      return serve(ports)
    })
    return hello.then(() => {
      if (this.#stopping) throw new Error(`worker ${pid} was stopped before serving`)
      return serve(this.#portsFor(slot))
    }).then(url => {
      this.#o.log.info({ worker: slot.index, workerPid: pid, url }, 'worker serving')
      // A reload put another config in service while it built the one before.
      if (this.#outOfSync(slot)) void this.#resync(slot)
      return url
    })
  }

  /** Has `worker` put the current config in service at once; resolves with its URL. `ports`: for its first config, see #portsFor. */
  async #sync (slot: Slot, worker: Worker, ports?: BoundPorts): Promise<string> {
    const reply = await this.#answer(slot, worker, this.#config, 'apply', { ports, first: slot.hash === undefined })
    this.#bound ??= reply.ports
    return reply.url as string
  }

  /**
   * Has `worker` put `config` in service (`apply`), or build it and hold it out of service (`prepare`),
   * or put it in service once held (`commit`); its answer, which says what it serves (see Slot.unsure).
   * Throws the error the worker reports. `first`: its first config.
   */
  async #answer (slot: Slot, worker: Worker, config: ConfigPayload, step: 'apply' | 'prepare' | 'commit', { again, ports, first = false }: { again?: boolean, ports?: BoundPorts, first?: boolean } = {}): Promise<Extract<Reply, { type: 'portcullis:applied' }>> {
    const message = (id: number): ToWorker => step === 'commit'
      ? { type: 'portcullis:commit', id, hash: config.hash }
      : { type: 'portcullis:config', id, config, unhealthy: this.#o.unhealthy(config.hash), addresses: this.#o.addresses(config.hash), ports, again, ...step === 'prepare' ? { prepare: true } as const : {} }
    let reply: Reply
    try {
      reply = await this.#ask(worker, message, APPLY_TIMEOUT_MS, step !== 'commit')
    } catch (err) {
      // A config to prepare never goes into service before its commit.
      if (err instanceof NoAnswer && slot.worker === worker && step !== 'prepare') slot.unsure = true
      throw err
    }
    if (reply.type !== 'portcullis:applied') throw new Error('unexpected reply')
    if (first && reply.error === undefined && this.#bound !== undefined && reply.ports !== undefined && !samePorts(reply.ports, this.#bound)) {
      // It asked for port 0 while a sibling held it, but that one exited before it bound: node:cluster opened another port.
      slot.killedFor = `bound port ${reply.ports.listen}, not the gateway's ${this.#bound.listen}`
      slot.why = 'setup_failed'
      worker.process.kill('SIGKILL')
      throw new Error(`worker ${worker.process.pid} ${slot.killedFor}`)
    }
    if (slot.worker === worker) {
      slot.unsure = false
      slot.hash = reply.hash
      // Its first config failed: it exits (see runWorker).
      if (first && reply.error !== undefined && reply.hash === undefined) Object.assign(slot, { why: 'setup_failed', killedFor: 'could not build its first config' })
    }
    if (reply.listen !== undefined) {
      const { key, host, port, reason } = reply.listen
      throw new ListenError(key, host, port, reason, { cause: reply.error })
    }
    if (reply.setup !== undefined) {
      const { plugin, route, cause } = reply.setup
      throw new PluginSetupError(plugin, route, reply.error as string, cause === undefined ? undefined : { cause: thrownAgain(cause) })
    }
    if (reply.error !== undefined) throw new Error(reply.error)
    return reply
  }

  /**
   * The ports the worker of `slot`, about to get its first config, is to bind where the config says 0;
   * undefined: 0 itself. node:cluster shares one listening socket among the workers that asked for the
   * same address and port, port 0 included, until the last of them exits: a worker asking for 0 then
   * gets a new port, and one asking for the port bound while they live cannot bind it. So a worker is
   * told 0 only while one that asked for 0 serves (holds it); else, once a port was bound, that port.
   * One that serves now may still exit before this one binds: #sync restarts a worker on another port.
   */
  #portsFor (slot: Slot): BoundPorts | undefined {
    slot.onZero = this.#bound === undefined || this.#slots.some(s => s !== slot && s.onZero && s.hash !== undefined && s.worker?.isConnected() === true)
    return slot.onZero ? undefined : this.#bound
  }

  /** `build`: the question is a config to build (see #silenceMs). */
  #ask (worker: Worker, message: (id: number) => ToWorker, timeoutMs: number, build = false): Promise<Reply> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(id, new NoAnswer(`worker ${worker.process.pid} did not answer within ${timeoutMs} ms`)), timeoutMs)
      this.#pending.set(id, {
        worker,
        build,
        settle: r => { clearTimeout(timer); if (r instanceof Error) reject(r); else resolve(r) }
      })
      try {
        worker.send(message(id), err => { if (err !== null) this.#settle(id, err) })
      } catch (err) {
        this.#settle(id, new NotSent(worker, err as Error))
      }
    })
  }

  /**
   * How long `slot`'s worker may be silent before it counts as hung (`ms`: HUNG_MS, or UNRESPONSIVE_MS
   * for liveness). While it builds a config it was sent, up to APPLY_TIMEOUT_MS: a large config's build
   * blocks its event loop for as long as it takes, on every worker at once in a reload, the config in
   * service still theirs to serve once it ends. It is unresponsive meanwhile all the same (see responsive).
   */
  #silenceMs (slot: Slot, ms: number): number {
    return this.#building(slot) ? Math.max(ms, APPLY_TIMEOUT_MS) : ms
  }

  /** Whether `slot`'s worker is building a config it was sent. */
  #building (slot: Slot): boolean {
    for (const p of this.#pending.values()) if (p.build && p.worker === slot.worker) return true
    return false
  }

  /**
   * A heartbeat: pings every worker that has said hello, and acts on those that have been silent too
   * long. Silence counts only while the primary runs on time: one that stalled (stopped, frozen,
   * swapped out) left the workers' answers unread meanwhile, and may run this before reading them.
   */
  #beat (): void {
    const now = performance.now()
    const stalledMs = Math.round(now - this.#beatAt - HEARTBEAT_MS)
    this.#beatAt = now
    if (stalledMs >= UNRESPONSIVE_MS) this.#o.log.warn({ stalledMs }, 'primary stalled: the workers\' silence meanwhile is not counted')
    for (const s of this.#slots) {
      const worker = s.worker
      if (worker === undefined || s.answeredAt === undefined || worker.isDead()) continue
      if (stalledMs > 0) s.answeredAt = Math.min(s.answeredAt + stalledMs, now)
      const silentMs = Math.round(now - s.answeredAt)
      const at = { worker: s.index, workerPid: worker.process.pid, silentMs }
      // While stopping, the stop's deadline ends a hung worker.
      const hungMs = this.#silenceMs(s, HUNG_MS)
      if (silentMs >= hungMs && !this.#stopping) {
        s.killedFor = `unresponsive for ${silentMs} ms`
        s.why = 'unresponsive'
        s.answeredAt = undefined
        this.#o.log.error({ ...at, limitMs: hungMs }, 'worker unresponsive too long; killing it')
        worker.process.kill('SIGKILL')
        continue
      }
      // By the heartbeat alone: a worker building a config answers no request meanwhile either (see responsive).
      if ((silentMs >= UNRESPONSIVE_MS) !== s.unresponsive) {
        s.unresponsive = !s.unresponsive
        if (s.unresponsive) this.#o.log.warn({ ...at, killAfterMs: hungMs, building: this.#building(s) ? true : undefined }, 'worker unresponsive: not counted as serving')
        else this.#o.log.info(at, 'worker responsive again')
      }
      worker.send({ type: 'portcullis:ping' } satisfies ToWorker, () => {})
    }
  }

  #settle (id: number, reply: Reply | Error): void {
    const pending = this.#pending.get(id)
    this.#pending.delete(id)
    pending?.settle(reply)
  }

  #exited (slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    for (const [id, p] of this.#pending) if (p.worker === worker) this.#settle(id, new WorkerExited(`worker ${worker.process.pid} exited`))
    if (slot.worker !== worker) return
    slot.worker = undefined
    slot.hash = undefined
    // Stopped while the gateway starts (a terminal's Ctrl-C, systemctl stop: every process got it): no restart.
    if (this.#stopping || this.#o.stopAsked?.() === true) return
    const upMs = Math.round(performance.now() - slot.startedAt)
    // 100 ms after a crash, doubling for each further crash that comes before the worker was stable.
    if (upMs >= STABLE_AFTER_MS) slot.crashes = 0
    const restartInMs = Math.min(FIRST_BACKOFF_MS * 2 ** slot.crashes++, MAX_BACKOFF_MS)
    this.#o.log.error({ worker: slot.index, workerPid: worker.process.pid, code, signal, reason: slot.killedFor, upMs, restartInMs }, 'worker exited unexpectedly; restarting it')
    this.#o.restarting?.(slot.why ?? 'crashed')
    slot.restart = setTimeout(() => {
      slot.restart = undefined
      this.#fork(slot).catch((err: Error) => {
        if (this.#stopping) return
        const shown = this.#o.shown?.(err) ?? err
        // The config it failed on serves on the other workers (a reload of a plugin setup failing only in this worker
        // said success), or a plugin file changed on disk since their start: it is restarted, with backoff, until it builds.
        if (slot.why === 'setup_failed') this.#o.log.error({ worker: slot.index, err: shown }, 'restarted worker cannot build the config in service (it loads plugin files as they are on disk now); restarting it')
        else this.#o.log.error({ worker: slot.index, err: shown }, 'restarted worker failed to start')
      })
    }, restartInMs)
  }
}
