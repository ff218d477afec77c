import type { GatewayConfig } from '../../src/config/schema.ts'
import { effectivePlugins, section } from '../../src/plugins/effective.ts'

/** The auth plugins that identify a consumer before the cache runs: what they admit carries credentials (route-cache.ts, credentialed). */
const AUTH_PLUGINS = ['key-auth', 'basic-auth', 'jwt-auth']

/** A route whose cache never stores: every request its auth plugins admit has credentials, and cacheAuthorized is off. */
export interface CredentialBypass {
  readonly route: string
  /** Where the route's cache config is: its own entry, or the top-level one. */
  readonly at: ReadonlyArray<string | number>
  /** The route's auth plugins, by name. */
  readonly auth: readonly string[]
  readonly message: string
}

/** The warning for `route`, whose `auth` plugins admit only requests with credentials. */
export const credentialBypassMessage = (route: string, auth: readonly string[]): string =>
  `route "${route}": the cache is bypassed for requests with credentials, and ${[...auth].sort().join(' and ')} admit${auth.length === 1 ? 's' : ''} no other, so nothing is stored: ` +
  'set cacheAuthorized: true, and have the upstream send public or s-maxage (responses to requests with credentials are stored only with public, s-maxage or must-revalidate; defaultTtl does not apply to them)'

/**
 * Routes with a cache (cacheAuthorized off) behind an auth plugin that admits no request without
 * credentials (no `anonymous`, no `optional`): the cache bypasses every request. The config as loaded.
 */
export function credentialBypasses (config: GatewayConfig): CredentialBypass[] {
  return config.routes.flatMap((route, i) => {
    const uses = effectivePlugins(section(config.plugins), section(route.plugins))
    const cache = uses.find(u => u.name === 'cache')
    if (cache === undefined || section(cache.config)?.cacheAuthorized === true) return []
    const auth = uses.filter(u => AUTH_PLUGINS.includes(u.name))
    // One admitting anonymous requests lets the cache serve those.
    if (auth.length === 0 || auth.some(u => admitsAnonymous(u.config))) return []
    const at = cache.source === 'route' ? ['routes', i, 'plugins', 'cache'] : ['plugins', 'cache']
    const names = auth.map(u => u.name).sort()
    return [{ route: route.name, at, auth: names, message: credentialBypassMessage(route.name, names) }]
  })
}

const admitsAnonymous = (config: unknown): boolean => section(config)?.anonymous !== undefined || section(config)?.optional === true
