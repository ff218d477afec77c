import { availableParallelism } from 'node:os'
import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.ts'
import { hiddenValues, scrubbed } from '../config/redact.ts'
import { shareStdout } from '../logging/logger.ts'
import { Metrics } from '../metrics/metrics.ts'
import { reloadOnChange } from '../reload/config-watcher.ts'
import { reloadOnCertificateChange, type CertificateWatcher } from '../reload/certificate-watcher.ts'
import { Reloader } from '../reload/reloader.ts'
import { Runtime } from '../runtime/runtime.ts'
import type { AdminState } from '../server/admin-server.ts'
import { listenAdmin, shutdownMs } from '../server/start.ts'
import { stopHeld } from '../server/signals.ts'
import { followKey } from '../upstreams/dns-discovery.ts'
import { startHealthChecks } from '../upstreams/health-check.ts'
import { warnUnresolvedTargets } from '../upstreams/unresolved-targets.ts'
import { clusterMetricsText, workerMetrics } from './cluster-metrics.ts'
import { clusterUpstreams } from './cluster-upstreams.ts'
import { clusterPluginAdmin, clusterStores } from './cluster-plugins.ts'
import type { AddressesPayload, ConfigPayload, HealthPayload } from './messages.ts'
import { NoAnswer, WorkerExited, WorkerPool } from './worker-pool.ts'
import { MAX_WORKERS_PER_CPU } from './worker-count.ts'

export interface Primary {
  readonly url: string
  readonly adminUrl: string | undefined
  readonly reloader: Reloader
  close (): Promise<void>
}

const payload = (loaded: LoadedConfig): ConfigPayload => ({ text: loaded.text, file: loaded.file, hash: loaded.hash })

const HEALTH_RESEND_MS = 1_000

/** The addresses `runtime`'s DNS discovery has, for the workers to take (see followPrimary): the workers resolve nothing themselves. */
const addressesOf = (runtime: Runtime): AddressesPayload => ({
  hash: runtime.loaded.hash,
  addresses: [...runtime.upstreams.values()].flatMap(u => u.config.targets.flatMap((entry, source) => {
    const found = entry.resolve === 'dns' ? runtime.addressesOf(u, source) : undefined
    return found === undefined ? [] : [[followKey(u.name, entry), found] as const]
  }))
})

/** The primary's runtime serves no traffic, but resolves DNS targets as the workers do: health is told by address. */
const VIEW = { dryRun: true, discovery: true } as const

/**
 * The primary of a multi-process gateway. Serves no traffic: it runs the workers, the admin
 * listener and the active health checks, and owns reloads. A new config is validated here once,
 * and only a valid one is sent to the workers, which build it, then all swap it in (or none does).
 *
 * It keeps a runtime of the active config built without traffic (the "view", DNS targets resolved), for
 * the admin API's config, routes and upstreams, and as the upstreams its health checks run against; their
 * verdicts go to every worker at once, so all stop (and resume) sending to a target together.
 */
export async function startPrimary (loaded: LoadedConfig, log: Logger, options: { count: number, watch: boolean }): Promise<Primary> {
  // The workers inherit stdout, and write to it as this process does.
  shareStdout()
  const cpus = availableParallelism()
  if (options.count > MAX_WORKERS_PER_CPU * cpus) {
    log.warn({ workers: options.count, cpus }, `server.workers is more than ${MAX_WORKERS_PER_CPU} times the CPUs: the workers only take turns on them, each with its own memory and upstream connections`)
  }
  const metrics = new Metrics()
  let view = await Runtime.build(loaded, log, VIEW)
  let stopping = false

  const unhealthy = (hash: string): HealthPayload[] => hash !== view.loaded.hash
    ? []
    : [...view.upstreams.values()].flatMap(u => u.targets.filter(t => !t.healthy).map(t => ({ hash, upstream: u.name, url: t.url, healthy: false })))
  /** The view of a config being applied: its addresses go with it to the workers. */
  let building: Runtime | undefined
  const addresses = (hash: string) => addressesOf(building?.loaded.hash === hash ? building : view)
  const restarting = workerMetrics(metrics.registry, () => pool.responsive)
  // A plugin's setup error may quote the config's secrets.
  const shown = (err: Error) => scrubbed(err, hiddenValues(view.loaded.config))
  const pool = new WorkerPool(payload(loaded), { count: options.count, log, unhealthy, stopAsked: stopHeld, restarting, shown, addresses })
  const checkHealth = (runtime: Runtime) => startHealthChecks(runtime.upstreams.values(), (upstream, url, healthy, reason) => {
    upstream.setTargetHealth(url, healthy, reason)
    pool.broadcast({ type: 'portcullis:health', health: { hash: runtime.loaded.hash, upstream: upstream.name, url, healthy } })
  })
  let stopChecks = checkHealth(view)
  // The workers' DNS targets are the view's. Lookups are made here only: counted here.
  let unwatch = metrics.watchUpstreams(view.upstreams)
  let sentAddresses = ''
  // A verdict is broadcast when it changes; a worker still starting then would miss it. So the whole
  // state goes out again every HEALTH_RESEND_MS; the DNS addresses when they change, or a worker
  // started serving, before the verdicts (which the targets they add may have).
  const resend = setInterval(() => {
    const found = addressesOf(view)
    const sent = found.addresses.length === 0 ? '' : `${JSON.stringify(found)}\u0000${pool.servingPids.join()}`
    if (sent !== sentAddresses) pool.broadcast({ type: 'portcullis:addresses', addresses: found })
    sentAddresses = sent
    for (const u of view.upstreams.values()) {
      if (u.healthCheck === undefined) continue
      for (const t of u.targets) pool.broadcast({ type: 'portcullis:health', health: { hash: view.loaded.hash, upstream: u.name, url: t.url, healthy: t.healthy } })
    }
  }, HEALTH_RESEND_MS).unref()

  let certificates: CertificateWatcher | undefined
  const reloader = new Reloader({
    file: loaded.file,
    log,
    metrics,
    active: () => view.loaded,
    diverged: () => pool.diverged,
    apply: async next => {
      const nextView = await Runtime.build(next, log, { ...VIEW, previous: view })
      building = nextView
      try {
        // Also to workers on the same text: a reload of an unchanged file is for the certificate files.
        // On every worker or on none: failed, none has left the config in service (see WorkerPool.apply).
        await pool.apply(payload(next), { again: true })
      } catch (err) {
        await nextView.dispose()
        throw err
      } finally {
        building = undefined
      }
      const old = view
      view = nextView
      unwatch()
      metrics.inService(new Set(next.config.routes.map(r => r.name)), view.upstreams)
      unwatch = metrics.watchUpstreams(view.upstreams)
      log.level = next.config.logging?.level ?? 'info'
      await stopChecks()
      stopChecks = checkHealth(view)
      certificates?.sync(next)
      await old.dispose()
    }
  })
  const state: AdminState = {
    // Only workers answering the heartbeat are ready (see WorkerPool.responsive): a hung one answers none of its connections,
    // nor does one whose build blocks its event loop. That one is alive until the apply timeout, though: it serves the
    // config in service once the build lets it, and a restart would only lose its requests.
    get ready () { return !stopping && pool.responsive > 0 },
    get live () { return pool.serving === 0 || pool.alive > 0 },
    get runtime () { return view },
    reloader,
    metrics: format => clusterMetricsText(metrics, pool, format, view.loaded),
    upstreams: () => clusterUpstreams(view, pool),
    stores: () => clusterStores(pool),
    pluginAdmin: (method, path, query, body) => clusterPluginAdmin(pool, { method, path, query, body }),
    log
  }

  try {
    const url = await pool.start()
    const admin = await listenAdmin(loaded.config, state)
    const watcher = options.watch
      ? reloadOnChange(loaded.file, () => { void reloader.reload('file') }, log)
      : undefined
    if (options.watch) certificates = reloadOnCertificateChange(loaded, () => { void reloader.reload('certificate') }, log)
    log.info({ url, admin: admin?.adminUrl, workers: pool.pids, watching: watcher !== undefined }, 'gateway listening')
    warnUnresolvedTargets(log, loaded.config)
    return {
      url,
      adminUrl: admin?.adminUrl,
      reloader,
      close: async () => {
        stopping = true
        watcher?.close()
        certificates?.close()
        // A reload under way is not waited for: stopping the pool fails it at once (and one still
        // building the primary's view by the deadline is abandoned).
        const deadline = shutdownMs(view.loaded.config)
        const reloads = reloader.close(deadline)
        log.info({ workers: pool.pids }, 'shutting down: draining every worker')
        await pool.stop(deadline)
        await reloads
        clearInterval(resend)
        await Promise.all([stopChecks(), admin?.admin.close(), view.dispose()])
        log.info('stopped')
      }
    }
  } catch (err) {
    clearInterval(resend)
    await Promise.allSettled([pool.stop(0), stopChecks(), view.dispose()])
    // A terminal's Ctrl-C or systemctl stop reached the workers too, which ended before serving, or a worker
    // still building was given up on once its timeout came: a stop, as once started.
    if ((err instanceof WorkerExited || err instanceof NoAnswer) && stopHeld()) {
      log.info('stopped: a signal was received during startup')
      log.flush()
      process.exit(0)
    }
    throw err
  }
}
