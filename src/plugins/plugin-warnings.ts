import type { GatewayConfig } from '../config/schema.ts'
import { hidingIn } from '../config/config-error.ts'
import { frozenCopy } from '../config/frozen-copy.ts'
import { hiddenValues } from '../config/redact.ts'
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
  /** What the hook said alone, its config's secrets hidden as validate hides them (explain shows it under its route). */
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
 * several routes is one warning naming them. `only`: of that route alone (its index). A message
 * quoting the config's secrets shows them hidden (shown).
 */
export function pluginWarnings (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, only?: number): PluginWarning[] {
  // Every message as the hook said it, in route order, hidden and escaped together below (shown).
  const said: Said[] = []
  // The config's secrets, found at the first message (hiddenValues walks the whole config), and how
  // much of a message is kept: MAX_LENGTH and the longest secret as JSON writes it, so that a 5 MB
  // message is neither kept (a copy of its start: copied) nor searched whole, and a secret across
  // MAX_LENGTH is still found whole (one across `kept`, pulled under MAX_LENGTH by secrets hidden
  // before it, is hidden as cut: shown).
  let secrets: readonly string[] | undefined
  let kept = 0
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
      const { messages, more } = ask(def, copy(use.config), ctx)
      for (const text of messages) {
        if (secrets === undefined) {
          secrets = hiddenValues(config)
          kept = MAX_LENGTH + secrets.reduce((n, s) => Math.max(n, JSON.stringify(s).length), 0)
        }
        said.push({ path, route: route.name, text: copied(text.slice(0, kept)), cut: text.length > kept })
      }
      if (more > 0) said.push({ path, route: route.name, text: `…and ${more} more`, cut: false, ours: true })
    }
  }
  if (secrets === undefined) return []
  const texts = shown(said, secrets)
  const found = new Map<string, { path: KeyPath, said: string, routes: string[] }>()
  for (const [i, { path, route }] of said.entries()) {
    const text = texts[i] as string
    const key = JSON.stringify([path, text])
    const seen = found.get(key)
    if (seen === undefined) found.set(key, { path, said: text, routes: [route] })
    else if (seen.routes[seen.routes.length - 1] !== route) seen.routes.push(route)
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
 * The hook's messages (at most MAX_MESSAGES, `more` those left out), or one naming the plugin
 * saying why there are none (a throw, a promise, not an array of strings), as said: shown makes
 * them safe to print.
 */
function ask (def: PluginDefinition, config: unknown, ctx: PluginWarningsContext): { messages: readonly string[], more: number } {
  const failed = (why: string) => ({ messages: [`plugin "${def.name}": its warnings hook ${why}`], more: 0 })
  // What a hook returns is read inside the try too: a revoked Proxy throws on Array.isArray.
  try {
    const said: unknown = def.warnings?.(config, ctx)
    if (typeof (said as { then?: unknown } | null | undefined)?.then === 'function') {
      // Not awaited: a rejection is not wanted either.
      Promise.resolve(said).catch(() => {})
      return failed('returned a promise: it must be synchronous')
    }
    if (!Array.isArray(said) || !said.every(m => typeof m === 'string')) return failed('must return an array of messages (strings)')
    return { messages: (said as string[]).slice(0, MAX_MESSAGES), more: Math.max(0, said.length - MAX_MESSAGES) }
  } catch (err) {
    return failed(`threw: ${describeThrown(err)}`)
  }
}

/**
 * `text` in a string of its own: a slice of a longer one is V8's view of it, keeping it whole (a
 * hook's 1 MB message on each of 1,000 routes: 1.2 GB).
 */
const copied = (text: string): string => Buffer.from(text, 'utf16le').toString('utf16le')

/** A hook's message, of a route, kept up to where pluginWarnings cuts it (`cut`: it was longer); `ours`: the platform's `…and N more`, shown as it is. */
interface Said { readonly path: KeyPath, readonly route: string, readonly text: string, readonly cut: boolean, readonly ours?: true }

/**
 * Each message with `secrets` (hiddenValues) and what else validate hides hidden as validate
 * hides them (hidingIn; at a cut end, what may start one too), then what is not printable ASCII
 * escaped (printableKey: a newline or an escape sequence would print as a line or colour of its
 * own), cut to MAX_LENGTH characters. Hidden first: escaped, a secret past ASCII (`pässwort`, an
 * emoji) was no longer found.
 */
function shown (said: readonly Said[], secrets: readonly string[]): string[] {
  // Each text hidden once: a top-level config's hook says the same of each of 5,000 routes.
  // Cut if any message so was: one ending at `kept` and one going on read alike.
  const cut = new Map<string, boolean>()
  for (const s of said) if (s.ours !== true) cut.set(s.text, s.cut || cut.get(s.text) === true)
  const hide = hidingIn(secrets)
  const hidden = new Map([...cut].map(([text, longer]) => [text, hide(text, longer)]))
  return said.map(s => {
    if (s.ours === true) return s.text
    const message = hidden.get(s.text) as string
    const text = printableKey(message.slice(0, MAX_LENGTH))
    return text.length > MAX_LENGTH || message.length > MAX_LENGTH || s.cut ? `${text.slice(0, MAX_LENGTH - 1)}…` : text
  })
}
