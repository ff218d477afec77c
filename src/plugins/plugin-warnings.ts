import type { GatewayConfig } from '../config/schema.ts'
import { frozenCopy } from '../config/frozen-copy.ts'
import { printableKey, type KeyPath } from '../config/positions.ts'
import { Consumers } from '../consumers/consumers.ts'
import type { PluginDefinition, PluginWarningsContext } from './contract.ts'
import { byRunOrder, effectivePlugins, section } from './effective.ts'
import { describeThrown } from './thrown.ts'

/** A plugin's warning (PluginDefinition.warnings), at the config it came from. */
export interface PluginWarning {
  readonly path: KeyPath
  /** What the hook said, with the route(s) it was said of named. */
  readonly message: string
  /** What the hook said alone (explain shows it under its route). */
  readonly said: string
}

// Caps on what one hook prints and logs at every load: its messages of one route, each one's length.
const MAX_MESSAGES = 20
const MAX_LENGTH = 1000
// Routes named in a warning said of several at one top-level key.
const NAMED_ROUTES = 3

/**
 * What the plugins' `warnings` hooks say of a config that passed every check: each route's use of
 * each plugin asked once, at the route's own entry or the top-level one it uses. The platform
 * names the route: `route "x": ` before each message, and a message said at one top-level key for
 * several routes is one warning naming them. `only`: of that route alone (its index).
 */
export function pluginWarnings (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, only?: number): PluginWarning[] {
  const found = new Map<string, { path: KeyPath, said: string, routes: string[] }>()
  let consumers: Consumers | undefined
  // Hooks get frozen copies: a hook changing its config would change what setup runs with. A
  // top-level config is one object for every route that uses it: copied once.
  const copies = new Map<unknown, unknown>()
  const copy = (value: unknown): unknown => {
    if (!copies.has(value)) copies.set(value, frozenCopy(value))
    return copies.get(value)
  }
  for (const [i, route] of config.routes.entries()) {
    if (only !== undefined && i !== only) continue
    const uses = effectivePlugins(section(config.plugins), section(route.plugins))
    if (!uses.some(u => plugins.get(u.name)?.warnings !== undefined)) continue
    const ordered = uses.map(u => ({ def: plugins.get(u.name) as PluginDefinition, use: Object.freeze({ name: u.name, config: copy(u.config) }) })).sort((a, b) => byRunOrder(a.def, b.def))
    const ctx: PluginWarningsContext = Object.freeze({
      routeName: route.name,
      plugins: Object.freeze(ordered.map(o => o.use)),
      consumers: consumers ??= new Consumers(copy(config.consumers) as GatewayConfig['consumers'])
    })
    for (const use of uses) {
      const def = plugins.get(use.name) as PluginDefinition
      if (def.warnings === undefined) continue
      const path = use.source === 'route' ? ['routes', i, 'plugins', use.name] : ['plugins', use.name]
      for (const said of ask(def, copy(use.config), ctx)) {
        const key = JSON.stringify([path, said])
        const seen = found.get(key)
        if (seen === undefined) found.set(key, { path, said, routes: [route.name] })
        else if (seen.routes[seen.routes.length - 1] !== route.name) seen.routes.push(route.name)
      }
    }
  }
  return [...found.values()].map(({ path, said, routes }) => ({ path, said, message: `${routesNamed(routes)}: ${said}` }))
}

/** `route "a"`, or `routes "a", "b", "c" and 4 more`. */
function routesNamed (routes: readonly string[]): string {
  const quoted = routes.slice(0, NAMED_ROUTES).map(r => `"${printableKey(r)}"`)
  if (routes.length === 1) return `route ${quoted[0] as string}`
  const more = routes.length - NAMED_ROUTES
  return more > 0 ? `routes ${quoted.join(', ')} and ${more} more` : `routes ${quoted.slice(0, -1).join(', ')} and ${quoted[quoted.length - 1] as string}`
}

/**
 * The hook's messages (at most MAX_MESSAGES, then one saying how many more), or one naming the
 * plugin saying why there are none (a throw, a promise, not an array of strings). Each printable:
 * a newline or an escape sequence would print as a line or colour of its own.
 */
function ask (def: PluginDefinition, config: unknown, ctx: PluginWarningsContext): readonly string[] {
  const failed = (why: string) => [printable(`plugin "${def.name}": its warnings hook ${why}`)]
  // What a hook returns is read inside the try too: a revoked Proxy throws on Array.isArray.
  try {
    const said: unknown = def.warnings?.(config, ctx)
    if (typeof (said as { then?: unknown } | null | undefined)?.then === 'function') {
      // Not awaited: a rejection is not wanted either.
      Promise.resolve(said).catch(() => {})
      return failed('returned a promise: it must be synchronous')
    }
    if (!Array.isArray(said) || !said.every(m => typeof m === 'string')) return failed('must return an array of messages (strings)')
    const messages = (said as string[]).slice(0, MAX_MESSAGES).map(printable)
    return said.length > MAX_MESSAGES ? [...messages, `…and ${said.length - MAX_MESSAGES} more`] : messages
  } catch (err) {
    return failed(`threw: ${describeThrown(err)}`)
  }
}

/** `text` with what is not printable ASCII escaped (printableKey), cut to MAX_LENGTH characters. */
function printable (text: string): string {
  // Cut before escaping too: a 5 MB message is not escaped whole to be cut.
  const shown = printableKey(text.slice(0, MAX_LENGTH))
  return shown.length > MAX_LENGTH || text.length > MAX_LENGTH ? `${shown.slice(0, MAX_LENGTH - 1)}…` : shown
}
