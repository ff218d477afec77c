import cluster from 'node:cluster'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import type { LoadedConfig } from '../config/load.ts'
import { toMs } from '../config/duration.ts'
import { Runtime } from '../runtime/runtime.ts'
import { GatewayServer } from './gateway-server.ts'
import { createAdminServer, type AdminState } from './admin-server.ts'
import type { AdminCall } from './admin/state.ts'
import type { PluginAdminQuery, PluginAdminReply } from '../plugins/admin-routes.ts'
import { logThrown } from '../plugins/thrown.ts'
import { Metrics } from '../metrics/metrics.ts'
import { Reloader } from '../reload/reloader.ts'
import { buildAndSwap } from '../reload/swap.ts'
import { reloadOnChange } from '../reload/config-watcher.ts'
import { reloadOnCertificateChange, type CertificateWatcher } from '../reload/certificate-watcher.ts'
import { StoreRegistry } from '../stores/registry.ts'
import type { StoreSnapshot } from '../stores/store.ts'
import { listenAs } from './listen-error.ts'
import { http2Limits } from './http2.ts'
import { closeRedirect, createHttpsRedirect, listenRedirect } from './https-redirect.ts'
import { warnUnresolvedTargets } from '../upstreams/unresolved-targets.ts'

/** The ports a gateway's listeners bound: server.listen's, and h2c's and the HTTPS redirect's when configured. */
export interface BoundPorts { readonly listen: number, readonly h2c?: number, readonly redirect?: number }

/** A running Portcullis: the gateway listener and the admin listener. */
export interface Portcullis {
  readonly gateway: GatewayServer
  readonly admin: FastifyInstance | undefined
  /** Where the gateway listens, e.g. http://127.0.0.1:8080. */
  readonly url: string
  /** Where the h2c listener (server.http2.h2c) listens, e.g. http://127.0.0.1:8081. */
  readonly h2cUrl: string | undefined
  /** Where server.tls.redirectHttp listens, e.g. http://127.0.0.1:8080. */
  readonly redirectUrl?: string
  /** The ports of those listeners (a config's port 0 resolved). */
  readonly ports: BoundPorts
  readonly adminUrl: string | undefined
  readonly metrics: Metrics
  /** Reloads the config file (also what SIGHUP, file changes and POST /config/reload do). */
  readonly reloader: Reloader
  /**
   * Builds `next` (already validated) and puts it in service, with the process's metrics and stores, as a reload does;
   * unless `current`, asked once it is built, says no (see buildAndSwap). Resolves whether it was put in service.
   */
  apply (next: LoadedConfig, current?: () => boolean): Promise<boolean>
  /** Requests (WebSockets included) in flight, on the config in service and on those it replaced that still drain. */
  readonly inFlight: number
  /** What GET /stores shows: the process's stores and their state. */
  stores (): Promise<StoreSnapshot[]>
  /** Graceful stop: stop accepting, drain within server.shutdownTimeout, release everything. */
  close (): Promise<void>
}

export interface StartOptions {
  /** Reload when the config file, or a file server.tls names, changes on disk. Default false (`portcullis start` turns it on). */
  readonly watch?: boolean
  /** Start the admin listener if the config has one. Default true (worker processes leave it to the primary). */
  readonly admin?: boolean
  /** For ${VAR} interpolation on reload. Default process.env. */
  readonly env?: NodeJS.ProcessEnv
  /** Run active health checks here. Default true; false in workers, whose primary runs them. */
  readonly healthChecks?: boolean
}

/** Whether a bound address takes loopback connections only (127.0.0.0/8, ::1). */
const loopback = (address: string): boolean => address === '::1' || /^(::ffff:)?127\./.test(address)

const urlOf = (a: AddressInfo, scheme = 'http'): string => `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`

/** Starts the admin listener, if the config has one. */
export async function listenAdmin (config: LoadedConfig['config'], state: AdminState): Promise<{ admin: FastifyInstance, adminUrl: string } | undefined> {
  if (config.admin === undefined) return undefined
  const admin = createAdminServer(state)
  try {
    const { host, port } = config.admin.listen
    await listenAs('admin.listen', host, port, () => admin.listen({ host, port }))
  } catch (err) {
    await admin.close()
    throw err
  }
  return { admin, adminUrl: urlOf(admin.server.address() as AddressInfo) }
}

/** How long a graceful stop may take before connections are cut. */
export const shutdownMs = (config: LoadedConfig['config']): number =>
  config.server.shutdownTimeout === undefined ? 30_000 : toMs(config.server.shutdownTimeout)

/** How long a plugin admin endpoint may take before it is answered 504 (PORTCULLIS_PLUGIN_ADMIN_TIMEOUT_MS shortens it in tests). */
const PLUGIN_ADMIN_TIMEOUT_MS = Number(process.env.PORTCULLIS_PLUGIN_ADMIN_TIMEOUT_MS ?? 30_000)
const TIMED_OUT: PluginAdminReply = { status: 504, body: { error: 'gateway_timeout', message: `the plugin admin endpoint did not answer within ${PLUGIN_ADMIN_TIMEOUT_MS / 1000} s` } }

/**
 * A plugin admin endpoint of `runtime`, or the methods `path` has when `method` is not one. A
 * handler that returns nothing is answered 204; one that does not settle in time, 504. Such a
 * handler cannot be stopped and may still change something: its end is logged, named by `call`.
 */
export async function runPluginAdmin (runtime: Runtime, method: string, path: string, query: PluginAdminQuery, body: unknown, call: AdminCall = {}): Promise<Awaited<ReturnType<AdminState['pluginAdmin']>>> {
  const allowed = runtime.pluginAdmin.allowed(path)
  if (!allowed.includes(method)) return { allowed }
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<PluginAdminReply>(resolve => { timer = setTimeout(resolve, PLUGIN_ADMIN_TIMEOUT_MS, TIMED_OUT) })
  const started = performance.now()
  const running = runtime.pluginAdmin.dispatch(method, path, query, body)
  try {
    const answer = await Promise.race([running, timeout])
    if (answer === TIMED_OUT) {
      const fields = () => ({ ...call, method, path, ms: Math.round(performance.now() - started) })
      running.then(
        reply => { runtime.log.warn({ ...fields(), status: reply === undefined ? 204 : reply.status ?? 200 }, 'plugin admin call finished late') },
        (err: unknown) => { logThrown(runtime.log, 'error', 'plugin admin call failed late', err, fields()) })
    }
    return answer ?? { status: 204 }
  } finally {
    clearTimeout(timer)
  }
}

export async function startPortcullis (loaded: LoadedConfig, log: Logger, metrics = new Metrics(), options: StartOptions = {}): Promise<Portcullis> {
  const { server } = loaded.config
  const stores = new StoreRegistry(log, metrics)
  const build = { metrics, healthChecks: options.healthChecks, stores }
  const runtime = await Runtime.build(loaded, log, build)
  const gateway = new GatewayServer(runtime, server)
  // Requests still in flight on a replaced config hold its connections: they count in the upstream gauges.
  metrics.watchRetired(() => gateway.retiring.map(r => r.upstreams))
  let certificates: CertificateWatcher | undefined
  const apply = async (next: LoadedConfig, current?: () => boolean) => {
    const swapped = await buildAndSwap(gateway, next, log, build, current)
    if (swapped) certificates?.sync(next)
    return swapped
  }
  const reloader = new Reloader({
    file: loaded.file,
    log,
    metrics,
    env: options.env,
    active: () => gateway.runtime.loaded,
    apply
  })
  let ready = false
  const state: AdminState = {
    get ready () { return ready },
    // This answering at all is the liveness of a single process.
    live: true,
    get runtime () { return gateway.runtime },
    reloader,
    metrics: format => metrics.exposition(format),
    upstreams: async () => gateway.upstreamSnapshots(),
    stores: async () => ({ stores: await stores.snapshot() }),
    pluginAdmin: (method, path, query, body, call) => runPluginAdmin(gateway.runtime, method, path, query, body, call),
    log
  }
  // Those of the configs replaced too: they hold the stop as much as the active one's.
  const inFlight = () => gateway.retiring.reduce((n, r) => n + r.inFlight, gateway.runtime.inFlight)
  let admin: Awaited<ReturnType<typeof listenAdmin>>
  // The HTTPS port redirects name: the setting of the config in service, else the port bound.
  const httpsPort = () => gateway.runtime.loaded.config.server.tls?.redirectHttp?.httpsPort ?? (gateway.app.server.address() as AddressInfo).port
  const redirect = server.tls?.redirectHttp === undefined ? undefined : createHttpsRedirect(httpsPort, () => gateway.runtime.loaded.config.server)
  if (redirect !== undefined) gateway.limitConnections(redirect)
  try {
    const { host, port } = server.listen
    const address = await listenAs('server.listen', host, port, () => gateway.listen(host, port))
    const h2c = http2Limits(server)?.h2c
    const h2cAddress = h2c === undefined ? undefined : await listenAs('server.http2.h2c.listen', h2c.host, h2c.port, () => gateway.listenH2c())
    const h2cUrl = h2cAddress === undefined ? undefined : urlOf(h2cAddress)
    // Client certificates are a TLS handshake's: the h2c listener, cleartext, serves anyone who reaches it.
    if (h2cAddress !== undefined && server.tls?.clientAuth?.mode === 'require' && !loopback(h2cAddress.address)) {
      log.warn({ h2c: h2cUrl }, 'server.tls.clientAuth requires a client certificate on the TLS listener only: the h2c listener (server.http2.h2c) serves requests without any')
    }
    const redirectAt = redirect === undefined ? undefined : await listenRedirect(redirect, server.tls?.redirectHttp?.listen.host as string, server.tls?.redirectHttp?.listen.port as number)
    admin = options.admin === false ? undefined : await listenAdmin(loaded.config, state)
    const url = urlOf(address, gateway.scheme)
    const watcher = options.watch === true
      ? reloadOnChange(loaded.file, () => { void reloader.reload('file') }, log)
      : undefined
    if (options.watch === true) certificates = reloadOnCertificateChange(loaded, () => { void reloader.reload('certificate') }, log)
    ready = true
    metrics.configActive(loaded.hash)
    const redirectUrl = redirectAt === undefined ? undefined : urlOf(redirectAt)
    const listening = { url, h2c: h2cUrl, redirect: redirectUrl, routes: runtime.routes.length }
    // A worker's line is not the gateway's: its primary logs that one, with the admin listener, once every worker serves.
    if (cluster.isWorker) log.info(listening, 'worker listening')
    else {
      log.info({ ...listening, admin: admin?.adminUrl, watching: watcher !== undefined }, 'gateway listening')
      // A worker's config is its primary's, which looks the names up (once, not per worker).
      warnUnresolvedTargets(log, loaded.config)
    }
    return {
      gateway,
      admin: admin?.admin,
      url,
      h2cUrl,
      redirectUrl,
      ports: { listen: address.port, h2c: h2cAddress?.port, redirect: redirectAt?.port },
      adminUrl: admin?.adminUrl,
      metrics,
      reloader,
      apply,
      stores: async () => stores.snapshot(),
      get inFlight () { return inFlight() },
      close: async () => {
        ready = false
        watcher?.close()
        certificates?.close()
        // Stop accepting first: a reload under way (a slow plugin setup) must not hold the
        // listener open. Finishing during the stop, it is not put in service (GatewayServer.swap);
        // not finished by the deadline, it is abandoned.
        const deadline = shutdownMs(gateway.runtime.loaded.config)
        const reloads = reloader.close(deadline)
        log.info({ deadlineMs: deadline, inFlight: inFlight() }, 'shutting down')
        if (redirect !== undefined) await closeRedirect(redirect)
        await gateway.close(deadline)
        await reloads
        await admin?.admin.close()
        log.info('stopped')
      }
    }
  } catch (err) {
    await Promise.allSettled([gateway.close(0), reloader.close(0), redirect?.listening === true ? closeRedirect(redirect) : undefined])
    throw err
  }
}
