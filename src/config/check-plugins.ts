import { resolve } from 'node:path'
import type { TSchema } from '@sinclair/typebox'
import type { PluginDefinition } from '../plugins/contract.ts'
import { STORE_REF } from '../stores/store-name.ts'
import { CONSUMER_REF } from '../consumers/consumer-id.ts'
import { FILE_REF } from './file-path.ts'
import { DEFAULT_STORE } from '../stores/registry.ts'
import { didYouMean } from './suggest.ts'
import { validateSchema, type SchemaProblem } from './validate.ts'
import type { GatewayConfig } from './schema.ts'

type Add = (path: Array<string | number>, message: string, at?: 'key' | 'value') => void

/**
 * The plugins of one section (top-level `plugins:` or a route's, `route` its params): known names,
 * each config valid against its plugin's schema and check, store names that exist, file paths
 * resolved against `base` (the config file's folder); on a route,
 * `false` only for a global plugin.
 */
export function checkPluginSection (config: GatewayConfig, section: Readonly<Record<string, unknown>> | undefined, at: Array<string | number>,
  route: { readonly params: readonly string[] } | undefined, plugins: ReadonlyMap<string, PluginDefinition>, base: string, problems: SchemaProblem[], add: Add): void {
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
    resolveFiles(def.schema, data, base)
    checkReferences(def.schema, data, [...at, name], config, add)
    try {
      for (const p of def.check?.(data, route) ?? []) add([...at, name, ...p.path], p.message)
    } catch (err) {
      add([...at, name], `the plugin's check failed: ${(err as Error).message}`)
    }
  }
}

type Visit = (schema: TSchema, data: unknown, path: Array<string | number>, replace: (value: unknown) => void) => void

/** Calls `visit` on every value of `data` with the part of `schema` it matches (through unions, arrays and objects). */
function walkSchema (schema: TSchema, data: unknown, path: Array<string | number>, visit: Visit): void {
  const walk = (s: TSchema, d: unknown, p: Array<string | number>, replace: (value: unknown) => void) => {
    visit(s, d, p, replace)
    for (const branch of (s.anyOf ?? s.oneOf ?? s.allOf ?? []) as TSchema[]) walk(branch, d, p, replace)
    if (Array.isArray(d) && s.items !== undefined) d.forEach((v, i) => walk(s.items as TSchema, v, [...p, i], value => { d[i] = value }))
    else if (d !== null && typeof d === 'object' && s.properties !== undefined) {
      const o = d as Record<string, unknown>
      for (const [k, sub] of Object.entries(s.properties as Record<string, TSchema>)) {
        if (k in o) walk(sub, o[k], [...p, k], value => { o[k] = value })
      }
    }
  }
  walk(schema, data, path, () => {})
}

/** Relative paths the schema marks as files (FilePath) made absolute from the config file's folder, before the plugin's check and setup see them. */
function resolveFiles (schema: TSchema, data: unknown, base: string): void {
  walkSchema(schema, data, [], (s, d, _p, replace) => { if (typeof d === 'string' && s[FILE_REF] === true) replace(resolve(base, d)) })
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
  walkSchema(schema, data, path, (s, d, p) => {
    if (typeof d === 'string' && s[STORE_REF] === true) refer(p, d, stores, 'store', ` (stores: ${stores.join(', ')})`)
    else if (typeof d === 'string' && s[CONSUMER_REF] === true) refer(p, d, consumers, 'consumer', consumers.length === 0 ? ' (consumers: has none)' : '')
  })
}
