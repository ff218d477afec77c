import type { GatewayConfig } from '../config/schema.ts'
import type { KeyPath } from '../config/positions.ts'
import { Consumers } from '../consumers/consumers.ts'
import type { PluginDefinition, PluginWarningsContext } from './contract.ts'
import { byRunOrder, effectivePlugins, section } from './effective.ts'
import { describeThrown } from './thrown.ts'

/** A plugin's warning (PluginDefinition.warnings), at the config it came from. */
export interface PluginWarning {
  readonly path: KeyPath
  readonly message: string
}

/**
 * What the plugins' `warnings` hooks say of a config that passed every check: each route's use of
 * each plugin asked once, at the route's own entry or the top-level one it uses. A message said of
 * one key for several routes is kept once. `only`: of that route alone (its index).
 */
export function pluginWarnings (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, only?: number): PluginWarning[] {
  const found = new Map<string, PluginWarning>()
  let consumers: Consumers | undefined
  for (const [i, route] of config.routes.entries()) {
    if (only !== undefined && i !== only) continue
    const uses = effectivePlugins(section(config.plugins), section(route.plugins))
    if (!uses.some(u => plugins.get(u.name)?.warnings !== undefined)) continue
    const ordered = uses.map(u => ({ def: plugins.get(u.name) as PluginDefinition, use: Object.freeze({ name: u.name, config: u.config }) })).sort((a, b) => byRunOrder(a.def, b.def))
    const ctx: PluginWarningsContext = Object.freeze({ routeName: route.name, plugins: Object.freeze(ordered.map(o => o.use)), consumers: consumers ??= new Consumers(config.consumers) })
    for (const use of uses) {
      const def = plugins.get(use.name) as PluginDefinition
      if (def.warnings === undefined) continue
      const path = use.source === 'route' ? ['routes', i, 'plugins', use.name] : ['plugins', use.name]
      for (const message of ask(def, use.config, ctx)) found.set(JSON.stringify([path, message]), { path, message })
    }
  }
  return [...found.values()]
}

/** The hook's messages, or one naming the plugin saying why there are none (a throw, a promise, not an array of strings). */
function ask (def: PluginDefinition, config: unknown, ctx: PluginWarningsContext): readonly string[] {
  const failed = (why: string) => [`plugin "${def.name}": its warnings hook ${why} (route "${ctx.routeName}")`]
  // What a hook returns is read inside the try too: a revoked Proxy throws on Array.isArray.
  try {
    const said: unknown = def.warnings?.(config, ctx)
    if (typeof (said as { then?: unknown } | null | undefined)?.then === 'function') {
      // Not awaited: a rejection is not wanted either.
      Promise.resolve(said).catch(() => {})
      return failed('returned a promise: it must be synchronous')
    }
    if (!Array.isArray(said) || !said.every(m => typeof m === 'string')) return failed('must return an array of messages (strings)')
    return [...said as string[]]
  } catch (err) {
    return failed(`threw: ${describeThrown(err)}`)
  }
}
