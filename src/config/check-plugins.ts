import { posix } from 'node:path'
import type { PluginCheckRoute, PluginConfigProblem, PluginDefinition } from '../plugins/contract.ts'
import { pluginFile } from '../plugins/registry.ts'
import { byRunOrder, configsByPlugin, effectivePlugins, section } from '../plugins/effective.ts'
import { compilePathPattern } from '../routing/path-pattern.ts'
import { didYouMean } from './suggest.ts'
import { describeThrown } from '../plugins/thrown.ts'
import { vouchedBy } from '../plugins/identity.ts'
import type { SchemaReferences } from './schema-refs.ts'
import { validateSchema, type SchemaProblem } from './validate.ts'
import type { GatewayConfig, RouteConfig } from './schema.ts'
import type { KeyPath } from './positions.ts'

type Add = (path: Array<string | number>, message: string, at?: 'key' | 'value') => void

/**
 * The plugins of one section (top-level `plugins:` or a route's, `route` its params): known names,
 * each config valid against its plugin's schema and check, its references and file paths (`refs`);
 * on a route, `false` only for a global plugin.
 */
export function checkPluginSection (config: GatewayConfig, section: Readonly<Record<string, unknown>> | undefined, at: Array<string | number>,
  route: PluginCheckRoute | undefined, plugins: ReadonlyMap<string, PluginDefinition>, refs: SchemaReferences, problems: SchemaProblem[], add: Add): void {
  const onRoute = at[0] === 'routes'
  for (const [name, pluginConfig] of Object.entries(section ?? {})) {
    const def = plugins.get(name)
    if (def === undefined) {
      const instead = definedInstead(name, config.loadPlugins, plugins)
      if (instead !== undefined) {
        problems.push({ path: [...at, name], at: 'key', message: `unknown plugin "${name}": ${instead}: use that name here, or give the plugin the name "${name}" in its definePlugin` })
        continue
      }
      const near = didYouMean(name, plugins.keys())
      const message = `unknown plugin "${name}"${near}; there are: ${[...plugins.keys()].sort().join(', ')} (your own are loaded with loadPlugins)`
      // No near name: it may be one a failed loadPlugins entry defines (see load.ts).
      problems.push({ path: [...at, name], at: 'key', message, ...(near === '' && { unknownPlugin: name }) })
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
    // The config as validated, defaults applied, is the one setup and vouchedHeaders get: one left empty too.
    if (pluginConfig === null) (section as Record<string, unknown>)[name] = data
    refs(def.schema, data, [...at, name])
    const vouched = vouchedBy(def, data)
    if (typeof vouched === 'string') add([...at, name], `the plugin's ${vouched}`)
    if (def.check === undefined) continue
    const checked = runCheck(def, data, route)
    for (const p of checked) add([...at, name, ...p.path], p.message)
    if (!onRoute) checkOnRoutes(def, data, config, plugins, checked, [...at, name], add)
  }
}

/**
 * For a plugin key named as a loadPlugins entry's folder or file (bad1, ./plugins/bad1/index.ts)
 * whose plugin loaded under another name: `loadPlugins[i] (path) defines "name"`. The entry's path
 * is relative to the config's folder: the plugin imported from a file whose path ends with it.
 */
function definedInstead (name: string, entries: readonly unknown[] | undefined, plugins: ReadonlyMap<string, PluginDefinition>): string | undefined {
  for (const [i, rel] of (entries ?? []).entries()) {
    if (typeof rel !== 'string' || !rel.split(/[\\/]/).some(part => part.replace(/\.[cm]?[jt]s$/, '') === name)) continue
    const written = posix.normalize(rel.replace(/\\/g, '/'))
    const tail = posix.isAbsolute(written) ? written : `/${written.replace(/^(?:\.\.\/)+/, '')}`
    const def = [...plugins.values()].find(d => pluginFile(d)?.replace(/\\/g, '/').endsWith(tail) === true)
    if (def !== undefined) return `loadPlugins[${i}] (${rel}) defines "${def.name}"`
  }
  return undefined
}

/** A route as its plugins' checks see it: its params, and the plugins it runs in their order (unknown names left out). */
export function checkRoute (params: readonly string[], config: GatewayConfig, routePlugins: unknown, plugins: ReadonlyMap<string, PluginDefinition>): PluginCheckRoute {
  const uses = effectivePlugins(section(config.plugins), section(routePlugins)).flatMap(use => {
    const def = plugins.get(use.name)
    return def === undefined ? [] : [{ def, use: { name: use.name, config: use.config ?? {} } }]
  })
  return { params, plugins: uses.sort((a, b) => byRunOrder(a.def, b.def)).map(u => u.use), configsOf: name => checkedConfigsOf(config).get(name) ?? [] }
}

// Once per config, on the first route's ask: a walk of every route for each route's checks grew as routes × routes (seconds per reload).
const configsOfConfig = new WeakMap<GatewayConfig, ReadonlyMap<string, readonly unknown[]>>()

function checkedConfigsOf (config: GatewayConfig): ReadonlyMap<string, readonly unknown[]> {
  let byName = configsOfConfig.get(config)
  if (byName === undefined) configsOfConfig.set(config, byName = configsByPlugin(config))
  return byName
}

/**
 * A plugin's check: its problems, or one at the plugin's key saying why there are none to report
 * (JS lets a plugin throw anything, or return anything: a promise, an object, a path as a string).
 */
function runCheck (def: PluginDefinition, data: unknown, route: PluginCheckRoute | undefined): readonly PluginConfigProblem[] {
  let found: unknown
  try {
    found = def.check?.(data, route)
  } catch (err) {
    return [{ path: [], message: `the plugin's check failed: ${describeThrown(err)}` }]
  }
  const wrong = checkResultProblem(found)
  return wrong === undefined ? found as readonly PluginConfigProblem[] | undefined ?? [] : [{ path: [], message: `the plugin's check ${wrong}` }]
}

const shown = (v: unknown) => v === null ? 'null' : Array.isArray(v) ? 'an array' : `${/^[aeiou]/.test(typeof v) ? 'an' : 'a'} ${typeof v}`
const isKey = (k: unknown) => typeof k === 'string' || typeof k === 'number'

/** Why what a check returned is not its problems (`[{ path: ['deny', 1], message }]`, nothing for none), or undefined. */
function checkResultProblem (found: unknown): string | undefined {
  if (found === undefined || found === null) return undefined
  if (typeof (found as { then?: unknown }).then === 'function') {
    // Not awaited: its outcome is not wanted, a rejection included.
    Promise.resolve(found).catch(() => {})
    return 'returned a promise: check must be synchronous (an async check is not awaited); return the problems themselves'
  }
  if (!Array.isArray(found)) return `must return an array of problems ({ path, message }), not ${shown(found)}`
  for (const [i, p] of (found as unknown[]).entries()) {
    const { path, message } = (typeof p === 'object' && p !== null ? p : {}) as { path?: unknown, message?: unknown }
    if (typeof p !== 'object' || p === null) return `returned ${shown(p)} as problem ${i}, not { path, message }`
    const bad = !Array.isArray(path) ? (path === undefined ? 'no path' : `a path that is ${shown(path)}`) : path.every(isKey) ? undefined : `a path holding ${shown(path.find(k => !isKey(k)))}`
    if (bad !== undefined) return `returned problem ${i} with ${bad}: a path is an array of keys and indexes (['deny', 1]; [] for the plugin's key)`
    if (typeof message !== 'string') return `returned problem ${i} with ${message === undefined ? 'no message' : `a message that is ${shown(message)}`}: a message is a string`
  }
  return undefined
}

const SHOWN_ROUTES = 3

/**
 * A top-level plugin's config checked against the params of each route that uses it (does not
 * replace or turn it off), as its setup there will be: reported at the top-level key, naming the
 * routes, unless the check without a route found the same.
 */
function checkOnRoutes (def: PluginDefinition, data: unknown, config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, found: readonly PluginConfigProblem[],
  at: Array<string | number>, add: Add): void {
  const key = (p: PluginConfigProblem) => JSON.stringify([p.path, p.message])
  const known = new Set(found.map(key))
  const byProblem = new Map<string, { problem: PluginConfigProblem, routes: string[] }>()
  // Routes the schema rejected may be of any shape (their problems are reported already).
  for (const r of config.routes as ReadonlyArray<Partial<RouteConfig> | null>) {
    const path = r?.match?.path
    if (typeof path !== 'string' || (r?.plugins as Record<string, unknown> | undefined)?.[def.name] !== undefined) continue
    const pattern = compilePathPattern(path)
    if (typeof pattern === 'string') continue
    for (const problem of runCheck(def, data, checkRoute(pattern.params, config, r?.plugins, plugins))) {
      const k = key(problem)
      if (known.has(k)) continue
      const shown = `"${String(r?.name)}" (${path})`
      const seen = byProblem.get(k)
      if (seen === undefined) byProblem.set(k, { problem, routes: [shown] })
      else seen.routes.push(shown)
    }
  }
  for (const { problem, routes } of byProblem.values()) {
    const more = routes.length > SHOWN_ROUTES ? ` and ${routes.length - SHOWN_ROUTES} more` : ''
    add([...at, ...problem.path], `on route${routes.length === 1 ? '' : 's'} ${routes.slice(0, SHOWN_ROUTES).join(', ')}${more}: ${problem.message}`)
  }
}

/** A route's plugin entry that, replacing the top-level one, drops what guarded the route: see replacedTopLevel. */
export interface ReplacedTopLevel {
  readonly route: string
  readonly plugin: string
  /** Where the route's entry is (routes[i].plugins.<plugin>), for locate() to place the warning. */
  readonly at: KeyPath
  /** What the route no longer gets of the top-level entry (the plugin's `replacing`). */
  readonly lost: readonly string[]
  readonly message: string
}

/**
 * Routes whose entry of a plugin with `replacing` (ip-filter, acl, request-size) replaces the
 * top-level one and drops a guard of it: a warning at load, naming the route, the plugin and what
 * is lost. The config as loaded (validated).
 */
export function replacedTopLevel (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>): ReplacedTopLevel[] {
  const found: ReplacedTopLevel[] = []
  const global = section(config.plugins) ?? {}
  for (const [i, route] of config.routes.entries()) {
    for (const [plugin, def] of plugins) {
      const [top, own] = [section(global[plugin]), section(section(route.plugins)?.[plugin])]
      const lost = def.replacing === undefined || top === undefined || own === undefined ? [] : def.replacing(top, own)
      if (lost.length > 0) found.push({ route: route.name, plugin, at: ['routes', i, 'plugins', plugin], lost, message: `route "${route.name}": its ${plugin} replaces the top-level one (the two are not merged): ${lost.join('; ')}; repeat in the route's entry what it should keep` })
    }
  }
  return found
}
