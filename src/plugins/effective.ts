import { frozenCopy } from '../config/frozen-copy.ts'
import type { PluginDefinition } from './contract.ts'

/** A plugin as one route uses it: its config, and whether that came from the top level or the route. */
export interface PluginUse {
  readonly name: string
  readonly config: unknown
  readonly source: 'global' | 'route'
}

/**
 * The plugins of a route: every top-level (global) plugin, except those the route turns off with
 * `name: false`, and the route's own, whose config replaces a global one of the same name.
 */
export function effectivePlugins (global: Readonly<Record<string, unknown>> | undefined, route: Readonly<Record<string, unknown>> | undefined): PluginUse[] {
  const uses = new Map<string, PluginUse>()
  for (const [name, config] of Object.entries(global ?? {})) uses.set(name, { name, config, source: 'global' })
  for (const [name, config] of Object.entries(route ?? {})) {
    if (config === false) uses.delete(name)
    else uses.set(name, { name, config, source: 'route' })
  }
  return [...uses.values()]
}

/** The order a route's plugins run in: higher priority first, ties by name. */
export const byRunOrder = (a: PluginDefinition, b: PluginDefinition): number => b.priority - a.priority || byCodeUnits(a.name, b.name)

// Not localeCompare: the order must not depend on the process's locale (LANG=et_EE puts z before t).
const byCodeUnits = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/** A plugins: section or route as written: an object, or undefined for anything else. */
export const section = (value: unknown): Readonly<Record<string, unknown>> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined

/**
 * A plugin config as plugins are handed it (setup, ctx.configsOf): a frozen copy, made once per
 * config object, so a top-level one is one copy for every route. A plugin that changed the config
 * it was given (ip-filter's deny list emptied) changed it for every route, and other plugins.
 */
export function frozenConfig (config: unknown): unknown {
  if (typeof config !== 'object' || config === null) return config
  let copy = frozenConfigs.get(config)
  if (copy === undefined) frozenConfigs.set(config, copy = frozenCopy(config))
  return copy
}

const frozenConfigs = new WeakMap<object, unknown>()
const frozenByPlugin = new WeakMap<object, ReadonlyMap<string, readonly unknown[]>>()
const NONE: readonly unknown[] = Object.freeze([])

/**
 * Every config of the plugin `name` in a loaded config (validated, defaults applied, one left empty
 * `{}`): its top-level one, then each route's own (not `false`), as frozenConfig; found once per config.
 */
export function configsOf (config: { readonly plugins?: unknown, readonly routes?: unknown }, name: string): readonly unknown[] {
  let byName = frozenByPlugin.get(config)
  if (byName === undefined) {
    byName = new Map([...configsByPlugin(config)].map(([plugin, uses]) => [plugin, Object.freeze(uses.map(frozenConfig))]))
    frozenByPlugin.set(config, byName)
  }
  return byName.get(name) ?? NONE
}

/**
 * Every config of each plugin, by name, as configsOf but not copied: while the config is checked, as
 * written (perhaps of any shape). One walk of the routes (the lists frozen, so that they can be shared).
 */
export function configsByPlugin (config: { readonly plugins?: unknown, readonly routes?: unknown }): ReadonlyMap<string, readonly unknown[]> {
  const routes = Array.isArray(config.routes) ? config.routes as unknown[] : []
  const byName = new Map<string, unknown[]>()
  for (const plugins of [config.plugins, ...routes.map(r => section(r)?.plugins)]) {
    for (const [name, use] of Object.entries(section(plugins) ?? {})) {
      if (use === undefined || use === false) continue
      const uses = byName.get(name)
      if (uses === undefined) byName.set(name, [use ?? {}])
      else uses.push(use ?? {})
    }
  }
  for (const uses of byName.values()) Object.freeze(uses)
  return byName
}
