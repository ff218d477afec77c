import cluster from 'node:cluster'
import type { Logger } from 'pino'
import { parseConfig, type LoadedConfig } from '../config/load.ts'
import { createLogger, shareStdout } from '../logging/logger.ts'
import { Metrics } from '../metrics/metrics.ts'
import { ListenError } from '../server/listen-error.ts'
import { PluginSetupError } from '../plugins/setup-error.ts'
import { endOnNextStopSignal, holdStartupSignals, workerServes } from '../server/signals.ts'
import { runPluginAdmin, startPortcullis, type BoundPorts, type Portcullis } from '../server/start.ts'
import { holdSwaps } from '../reload/swap.ts'
import { sendableReply, type SendableReply } from '../server/admin/plugins.ts'
import { followPrimary } from '../upstreams/dns-discovery.ts'
import type { TargetAddress } from '../upstreams/upstream.ts'
import { isOurs, type AddressesPayload, type FromWorker, type HealthPayload, type PluginAdminAnswer, type ToWorker } from './messages.ts'
import { workerPlace } from './worker-count.ts'

const send = (m: FromWorker) => process.send?.(m, undefined, {}, () => {})

/** A checked reply as it goes to the primary: without its JSON, since IPC serializes the body anyway. */
const pick = ({ status, body }: SendableReply): PluginAdminAnswer => ({ status, body })

/** `loaded` with the listeners its config binds to port 0 on `ports` instead. */
function onPorts (loaded: LoadedConfig, ports: BoundPorts): LoadedConfig {
  const at = <L extends { port: number }>(listen: L, port: number | undefined): L => listen.port === 0 && port !== undefined ? { ...listen, port } : listen
  const { server } = loaded.config
  const { http2, tls } = server
  return {
    ...loaded,
    config: {
      ...loaded.config,
      server: {
        ...server,
        listen: at(server.listen, ports.listen),
        http2: typeof http2 === 'object' && http2.h2c !== undefined ? { ...http2, h2c: { ...http2.h2c, listen: at(http2.h2c.listen, ports.h2c) } } : http2,
        tls: tls?.redirectHttp === undefined ? tls : { ...tls, redirectHttp: { ...tls.redirectHttp, listen: at(tls.redirectHttp.listen, ports.redirect) } }
      }
    }
  }
}

/** A PluginSetupError's cause (loggedThrown's, its `name` not enumerable) as IPC's JSON carries it whole. */
const sendable = (cause: unknown): Record<string, unknown> | undefined =>
  typeof cause === 'object' && cause !== null ? { ...cause, name: (cause as { name?: unknown }).name } : undefined

/** What became of a config the primary sent: the reply, but for its type and id. */
type Outcome = Omit<Extract<FromWorker, { type: 'portcullis:applied' }>, 'type' | 'id'>

interface Deferred<T> { readonly promise: Promise<T>, readonly resolve: (value: T) => void }
function deferred<T> (): Deferred<T> {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>(r => { resolve = r })
  return { promise, resolve }
}

/**
 * A config the primary sent to be prepared (see WorkerPool.apply), numbered as sent. `built`: the answer to
 * it, once built and held out of service; `word`: the primary's commit (true) or abort (false); `outcome`:
 * what became of it in the end, the answer to the commit.
 */
interface Prepared { readonly hash: string, readonly number: number, readonly built: Deferred<Outcome>, readonly word: Deferred<boolean>, readonly outcome: Promise<Outcome> }

/**
 * A worker process: serves the gateway listener (shared with its siblings through node:cluster)
 * with whatever config the primary sends, which the primary has validated. Health checks run in
 * the primary; the worker applies the target health it is told. Never settles: once stopped, the
 * worker ends its process itself, with its exit code.
 */
export function runWorker (): Promise<never> {
  // Already done first thing by the CLI (see main.ts); here for a worker started otherwise.
  holdStartupSignals()
  // The primary's stdout, written by every worker at once.
  shareStdout()
  const metrics = new Metrics()
  let running: Portcullis | undefined
  let log: Logger | undefined
  let stopping: Promise<number> | undefined
  /**
   * Configs are dealt with one at a time, in the order sent, each numbered: one overtaken by a later
   * one while it waited or built is dropped (its build released), so a slow build never replaces
   * what a later config put in service (the primary may have stopped waiting for it, and sent another).
   */
  let sent = 0
  let queue: Promise<unknown> = Promise.resolve()
  /** The config sent last, until dealt with: the same one sent again (the primary asking once more) gets its outcome. */
  let last: { hash: string, outcome: Promise<Outcome> } | undefined
  /** The config sent last to be prepared, until dealt with. */
  let prepared: Prepared | undefined

  const inService = (): Outcome => running === undefined ? {} : { hash: running.gateway.runtime.loaded.hash, url: running.url, ports: running.ports }
  const superseded = (): Outcome => ({ ...inService(), error: 'superseded by a config sent later', superseded: true })

  const stop = (code: number) => {
    if (stopping !== undefined) return
    // From now on a stop signal ends it at once: the primary's second one, passed on, or a terminal's second Ctrl-C.
    endOnNextStopSignal(() => log, () => running?.inFlight)
    // A build held for the primary's word is released.
    prepared?.word.resolve(false)
    stopping = (async () => {
      await running?.close()
      return code
    })().catch(err => { log?.error({ err }, 'unclean worker shutdown'); return 1 })
    // Not process.disconnect(): node:cluster would exit 0 at once on it, whatever the code.
    void stopping.then(c => { log?.flush(); process.exit(c) })
  }

  /**
   * The primary's DNS addresses, by followKey: this process's DNS entries take them rather than
   * resolving (the primary's health checks probe only the addresses it found). Those of the config in service
   * replace the whole (once no other config is on its way); others, such as a config's being built, add to it.
   */
  const addresses = new Map<string, readonly TargetAddress[]>()
  const readdress = followPrimary(key => addresses.get(key))
  const takeAddresses = (p: AddressesPayload) => {
    const whole = last === undefined && running?.gateway.runtime.loaded.hash === p.hash
    const given = new Map(p.addresses)
    let changed = false
    for (const [key, list] of given) {
      if (JSON.stringify(addresses.get(key)) === JSON.stringify(list)) continue
      addresses.set(key, list)
      changed = true
    }
    if (whole) for (const key of addresses.keys()) if (!given.has(key)) addresses.delete(key)
    if (changed) readdress()
  }

  const setHealth = (h: HealthPayload) => {
    const runtime = running?.gateway.runtime
    // Health decided under another config concerns other upstream objects: ignore it.
    if (runtime?.loaded.hash === h.hash) runtime.upstreams.get(h.upstream)?.setTargetHealth(h.url, h.healthy)
  }

  const apply = async (message: Extract<ToWorker, { type: 'portcullis:config' }>, number: number): Promise<Outcome> => {
    const current = () => number === sent
    if (running !== undefined && !current()) return superseded()
    const loaded = await parseConfig(message.config.text, message.config.file)
    if (running !== undefined) {
      // The process's stores carry over, as in a single process: counters, cache contents, Redis connections.
      if (!await running.apply(loaded, current)) return superseded()
    } else {
      // Its lines say which worker wrote them, as the primary's about it do (the pid changes with each restart).
      log = createLogger({ level: loaded.config.logging?.level, pretty: loaded.config.logging?.pretty }).child({ worker: workerPlace()?.index })
      running = await startPortcullis(message.ports === undefined ? loaded : onPorts(loaded, message.ports), log, metrics, { admin: false, healthChecks: false })
      holdSwaps(running.gateway, hold)
      // From now on SIGTERM and SIGINT drain it; until now they ended it at once: nothing to drain.
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop(0))
      workerServes()
    }
    for (const h of message.unhealthy) setHealth(h)
    return inService()
  }

  /**
   * A config built (see buildAndSwap), before it goes into service: one sent to be prepared is held until the
   * primary's word, its prepare answered meanwhile (with the config still in service); one sent otherwise goes in.
   */
  const hold = async (): Promise<boolean> => {
    const p = prepared
    if (p?.number !== sent) return true
    log?.info({ hash: p.hash }, 'config built: held out of service until every worker has built it')
    p.built.resolve(inService())
    return await p.word.promise
  }

  /** The primary's commit of config `hash`: what this worker serves once it has put it in service. */
  const commit = async (hash: string): Promise<Outcome> => {
    const p = prepared?.hash === hash ? prepared : undefined
    p?.word.resolve(true)
    const outcome = await p?.outcome ?? inService()
    return outcome.hash === hash || outcome.error !== undefined ? outcome : { ...outcome, error: `config ${hash} was not built here` }
  }

  /** The answer to `message`: its outcome; for one to prepare, as soon as it is built (see hold), unless it never gets that far. */
  const outcomeOf = (message: Extract<ToWorker, { type: 'portcullis:config' }>): Promise<Outcome> => {
    const again = message.again === true
    // A prepare is answered once built, never with the outcome of another.
    if (!again && message.prepare !== true && last?.hash === message.config.hash) return last.outcome
    const number = ++sent
    // In service already (asked again after an answer that came too late): nothing to build; a build under way for another is dropped when it ends.
    const quick = !again && running?.gateway.runtime.loaded.hash === message.config.hash
    const outcome = quick
      ? Promise.resolve().then(() => { for (const h of message.unhealthy) setHealth(h); return inService() })
      : queue.then(() => apply(message, number)).catch((err: Error): Outcome => {
        // A listen or plugin setup error is the primary's to report, in one line.
        const listen = err instanceof ListenError ? { key: err.key, host: err.host, port: err.port, reason: err.reason } : undefined
        const setup = err instanceof PluginSetupError ? { plugin: err.plugin, route: err.route, cause: sendable(err.cause) } : undefined
        if (listen === undefined && setup === undefined) log?.error({ err }, 'could not apply the config from the primary')
        return { ...inService(), error: err.message, listen, setup }
      })
    if (!quick) queue = outcome
    last = { hash: message.config.hash, outcome }
    void outcome.then(() => { if (last?.outcome === outcome) last = undefined })
    if (message.prepare !== true) return outcome
    const p: Prepared = { hash: message.config.hash, number, built: deferred(), word: deferred(), outcome }
    prepared = p
    void outcome.then(() => { if (prepared === p) prepared = undefined })
    return Promise.race([p.built.promise, outcome])
  }

  return new Promise(() => {
    process.on('message', (m: unknown) => {
      if (!isOurs<ToWorker>(m)) return
      switch (m.type) {
        case 'portcullis:config':
          takeAddresses(m.addresses)
          void outcomeOf(m).then(outcome => {
            send({ type: 'portcullis:applied', id: m.id, ...outcome })
            // A worker that cannot start is of no use: exit, and the primary restarts it with backoff.
            if (running === undefined) stop(1)
          })
          break
        case 'portcullis:commit':
          void commit(m.hash).then(outcome => send({ type: 'portcullis:applied', id: m.id, ...outcome }))
          break
        case 'portcullis:abort':
          if (prepared?.hash === m.hash) prepared.word.resolve(false)
          break
        case 'portcullis:health': setHealth(m.health); break
        case 'portcullis:addresses': takeAddresses(m.addresses); break
        case 'portcullis:metrics':
          void metrics.registry.getMetricsAsJSON().then(list => send({ type: 'portcullis:metrics', id: m.id, pid: process.pid, metrics: list }))
          break
        case 'portcullis:upstreams': {
          const runtime = running?.gateway.runtime
          // With what the configs it replaced still hold on the same targets (see GatewayServer.upstreamSnapshots).
          send({ type: 'portcullis:upstreams', id: m.id, hash: runtime?.loaded.hash, upstreams: running?.gateway.upstreamSnapshots() ?? [] })
          break
        }
        case 'portcullis:stores':
          void running?.stores().then(stores => send({ type: 'portcullis:stores', id: m.id, pid: process.pid, stores }))
          break
        case 'portcullis:plugin-admin': {
          const runtime = running?.gateway.runtime
          if (runtime === undefined) break
          const { method, path, query, body } = m.call
          runPluginAdmin(runtime, method, path, query, body)
            // Checked here, where the plugin runs: a reply IPC cannot carry (a cycle, a BigInt) would throw in send and end the worker.
            .then((answer): PluginAdminAnswer => 'allowed' in answer ? answer : pick(sendableReply(`${method} ${path}`, answer)))
            .catch((err: Error) => { log?.error({ err }, 'plugin admin endpoint failed'); return { status: 500, body: { error: 'internal_error', message: 'the plugin admin endpoint failed; see the worker log' } } })
            .then(answer => send({ type: 'portcullis:plugin-admin', id: m.id, pid: process.pid, answer }))
          break
        }
        case 'portcullis:ping': send({ type: 'portcullis:pong' }); break
        case 'portcullis:shutdown': stop(0); break
      }
    })
    // The primary gone (killed): node:cluster would exit 0 at once, cutting the requests in flight.
    // They finish first, within server.shutdownTimeout (no new ones come: the port went with the primary).
    const self = cluster.worker
    if (self !== undefined) self.once('disconnect', () => { self.exitedAfterDisconnect = true; stop(0) })
    send({ type: 'portcullis:hello' })
  })
}
