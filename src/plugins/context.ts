import type { Logger } from 'pino'
import type { LogLimiter } from '../logging/log-limiter.ts'
import type { ConsumerCredential, Consumers } from '../consumers/consumers.ts'
import type { PluginMetricsSource } from '../metrics/plugin-metrics.ts'
import { DEFAULT_STORE, type StoreLease } from '../stores/registry.ts'
import type { PluginAdminRoutes } from './admin-routes.ts'
import type { PluginSetupContext } from './contract.ts'
import { disposeWithin } from './deadline.ts'

/** What the process and one config give every plugin setup: the parts of a PluginSetupContext. */
export interface PluginServices {
  readonly stores: StoreLease
  readonly consumers: Consumers
  readonly metrics: PluginMetricsSource
  readonly admin: PluginAdminRoutes
  /** ctx.shared values of this config, by plugin and key. */
  readonly shared: Map<string, unknown>
  /** Every config of a plugin in this config (ctx.configsOf). */
  readonly configsOf: (plugin: string) => readonly unknown[]
  /** The config's limited lines: a plugin's own (LogLimiter.of(ctx.log)) are flushed with them, when the config is retired or the gateway stops. */
  readonly limits?: LogLimiter
}

/** server.pluginTimeout left out, ms. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 30_000

/**
 * `redacted` collects the route's ctx.redactHeaders names, lower-cased. The credentials were validated
 * against the plugin's credentials.schema at load: typed as never, the context fits its setup's.
 * `routeMethods` undefined: the route takes every method. `hookTimeoutMs`: server.pluginTimeout.
 */
export function setupContext (services: PluginServices, plugin: string, routeName: string, routePath: string, routeParams: readonly string[], log: Logger, redacted: Set<string>,
  routeMethods?: readonly string[], hookTimeoutMs = DEFAULT_PLUGIN_TIMEOUT_MS): PluginSetupContext<never> {
  services.limits?.adopt(log)
  return {
    routeName,
    routePath,
    routeParams,
    routeMethods,
    hookTimeoutMs,
    log,
    store (name = DEFAULT_STORE) {
      const store = services.stores.get(name)
      // Names are checked at load (StoreName); this only trips for a plugin that skips that schema.
      if (store === undefined) throw new Error(`plugin "${plugin}" asked for store "${name}", which is not under stores:`)
      return store
    },
    consumers: services.consumers,
    credentials: services.consumers.credentialsFor(plugin) as ReadonlyArray<ConsumerCredential<never>>,
    metrics: services.metrics.forPlugin(plugin),
    admin: services.admin.forPlugin(plugin),
    shared<T> (key: string, create: () => T): T {
      const id = `${plugin}\u0000${key}`
      if (!services.shared.has(id)) services.shared.set(id, create())
      return services.shared.get(id) as T
    },
    configsOf: services.configsOf,
    redactHeaders (...names) {
      for (const name of names) redacted.add(name.toLowerCase())
    }
  }
}

/** Disposes the ctx.shared values that have a dispose(), each for at most `ms`. */
export async function disposeShared (shared: Map<string, unknown>, ms: number, log: Logger): Promise<void> {
  await disposeWithin([...shared].map(([id, v]) => ({ plugin: id.slice(0, id.indexOf('\u0000')), dispose: () => (v as { dispose?: () => unknown } | null)?.dispose?.() })), ms, log)
}
