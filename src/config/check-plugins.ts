import type { TSchema } from '@sinclair/typebox'
import type { PluginDefinition } from '../plugins/contract.ts'
import { STORE_REF } from '../stores/store-name.ts'
import { CONSUMER_REF } from '../consumers/consumer-id.ts'
import { DEFAULT_STORE } from '../stores/registry.ts'
import { didYouMean } from './suggest.ts'
import { validateSchema, type SchemaProblem } from './validate.ts'
import type { GatewayConfig } from './schema.ts'

type Add = (path: Array<string | number>, message: string, at?: 'key' | 'value') => void

/**
 * The plugins of one section (top-level `plugins:` or a route's, `route` its params): known names,
 * each config valid against its plugin's schema and check, store names that exist; on a route,
 * `false` only for a global plugin.
 */
export function checkPluginSection (config: GatewayConfig, section: Readonly<Record<string, unknown>> | undefined, at: Array<string | number>,
  route: { readonly params: readonly string[] } | undefined, plugins: ReadonlyMap<string, PluginDefinition>, problems: SchemaProblem[], add: Add): void {
  const onRoute = at[0] === 'routes'
  for (const [name, pluginConfig] of Object.entries(section ?? {})) {
    const def = plugins.get(name)
    if (def === undefined) {
      add([...at, name], `unknown plugin "${name}"${didYouMean(name, plugins.keys())}; there are: ${[...plugins.keys()].sort().join(', ')} ` +
        '(your own are loaded with loadPlugins)', 'key')
      continue
    }
    if (onRoute && pluginConfig === false) {
      if (config.plugins?.[name] === undefined) add([...at, name], `"${name}: false" turns off a top-level plugin, but plugins: has no "${name}"`)
      continue
    }
    const data = pluginConfig ?? {}
    const found = validateSchema(def.schema, data)
    for (const p of found) problems.push({ ...p, path: [...at, name, ...p.path] })
    if (found.length > 0) continue
    checkReferences(def.schema, data, [...at, name], config, add)
    try {
      for (const p of def.check?.(data, route) ?? []) add([...at, name, ...p.path], p.message)
    } catch (err) {
      add([...at, name], `the plugin's check failed: ${(err as Error).message}`)
    }
  }
}

/** Every value the schema marks as a store name (StoreName) must name a store; as a consumer id (ConsumerId), a consumer. */
function checkReferences (schema: TSchema, data: unknown, path: Array<string | number>, config: GatewayConfig, add: Add): void {
  const stores = [...new Set([DEFAULT_STORE, ...Object.keys(config.stores ?? {})])]
  // The consumers section may be malformed (its own problems are reported already).
  const consumers = (Array.isArray(config.consumers) ? config.consumers : []).flatMap(c => typeof (c as { id?: unknown } | null)?.id === 'string' ? [c.id] : [])
  const seen = new Set<string>()
  const refer = (p: Array<string | number>, value: string, known: readonly string[], what: string, more: string) => {
    const key = JSON.stringify(p)
    if (known.includes(value) || seen.has(key)) return
    seen.add(key)
    add(p, `unknown ${what} "${value}"${didYouMean(value, known)}${more}`)
  }
  const walk = (s: TSchema, d: unknown, p: Array<string | number>) => {
    if (typeof d === 'string' && s[STORE_REF] === true) return refer(p, d, stores, 'store', ` (stores: ${stores.join(', ')})`)
    if (typeof d === 'string' && s[CONSUMER_REF] === true) return refer(p, d, consumers, 'consumer', consumers.length === 0 ? ' (consumers: has none)' : '')
    for (const branch of (s.anyOf ?? s.oneOf ?? s.allOf ?? []) as TSchema[]) walk(branch, d, p)
    if (Array.isArray(d) && s.items !== undefined) d.forEach((v, i) => walk(s.items as TSchema, v, [...p, i]))
    else if (d !== null && typeof d === 'object' && s.properties !== undefined) {
      for (const [k, sub] of Object.entries(s.properties as Record<string, TSchema>)) {
        if (k in d) walk(sub, (d as Record<string, unknown>)[k], [...p, k])
      }
    }
  }
  walk(schema, data, path)
}
