import { definePlugin, type PluginConfigProblem } from '../../src/index.ts'
import { refusal } from '../shared/refusal.ts'
import { AddressTrie } from './address-trie.ts'
import { IpFilterSchema } from './schema.ts'

/** Entries were checked at load (check below): each one goes in. */
function trieOf (entries: readonly string[] | undefined): AddressTrie | undefined {
  if (entries === undefined || entries.length === 0) return undefined
  const trie = new AddressTrie()
  for (const e of entries) trie.add(e)
  return trie
}

/**
 * Refuses (403) client addresses (after trustProxy) that `deny` holds or `allow` lacks. An address
 * that cannot be read is refused. Priority 3050: access control, just after cors (whose headers then
 * reach the 403 too).
 */
export default definePlugin({
  name: 'ip-filter',
  priority: 3050,
  schema: IpFilterSchema,
  check (config) {
    const problems: PluginConfigProblem[] = []
    // An empty list (from templating, say) must not silently open or leave unfiltered a route.
    if (config.allow?.length === 0) problems.push({ path: ['allow'], message: 'an empty allow would let every client through: remove it, or list the addresses to allow' })
    else if (config.deny?.length === 0 && config.allow === undefined) problems.push({ path: ['deny'], message: 'an empty deny refuses nobody and this filter has no allow: remove the filter, or list the addresses to deny' })
    for (const key of ['allow', 'deny'] as const) {
      config[key]?.forEach((entry, i) => {
        try { new AddressTrie().add(entry) } catch (err) { problems.push({ path: [key, i], message: (err as Error).message }) }
      })
    }
    return problems
  },
  // A top-level deny entry is kept when a route deny range holds all of it, however written
  // (2001:DB8::/32, 10.0.0.0/7 or ::ffff:10.0.0.0/104 for 10.0.0.0/8). A route's own allow is
  // deliberate: only one left out is warned of.
  replacing (top, route) {
    const deny = trieOf(route.deny)
    const lost = (top.deny ?? []).filter(e => deny?.covers(e) !== true)
    return [
      ...lost.length === 0 ? [] : [`the top-level deny of ${lost.join(', ')}`],
      ...top.allow !== undefined && route.allow === undefined ? [`the top-level allow (${top.allow.join(', ')}): every address the route does not deny passes`] : []
    ]
  },
  setup (config, ctx) {
    const allow = trieOf(config.allow)
    const deny = trieOf(config.deny)
    const refused = ctx.metrics.counter({ name: 'portcullis_ip_filter_refused_total', help: 'Requests refused by ip-filter, by route.', labelNames: ['route'] })
      .labels(ctx.routeName)
    // has() is undefined for what is not an address: refused by either list. Without allow, check
    // made sure there is a deny.
    const passes = (ip: string): boolean => {
      const denied = deny?.has(ip)
      if (denied === true) return false
      if (allow !== undefined) return allow.has(ip) === true
      return denied === false
    }
    return {
      onRequest (req) {
        if (passes(req.clientIp)) return undefined
        refused.inc()
        return refusal(403, 'ip_denied', 'requests from this address are not allowed', req.id)
      }
    }
  }
})
