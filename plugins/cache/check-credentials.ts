/** The auth plugins that identify a consumer before the cache runs: what they admit carries credentials (route-cache.ts, credentialed). */
const AUTH_PLUGINS = ['key-auth', 'basic-auth', 'jwt-auth']

/** The warning for a route whose `auth` plugins admit only requests with credentials (the platform names the route). */
export const credentialBypassMessage = (auth: readonly string[]): string =>
  `the cache is bypassed for requests with credentials, and ${[...auth].sort().join(' and ')} admit${auth.length === 1 ? 's' : ''} no other, so nothing is stored: ` +
  'set cacheAuthorized: true, and have the upstream send public or s-maxage (responses to requests with credentials are stored only with public, s-maxage or must-revalidate; defaultTtl does not apply to them)'

/**
 * The auth plugins (sorted names) of a route whose cache, with `cache` its config, bypasses every
 * request: cacheAuthorized off, and none of them admits a request without credentials (no
 * `anonymous`, no `optional`). [] when the cache may store. `plugins`: the route's, with their configs.
 */
export function bypassingAuth (cache: { readonly cacheAuthorized?: boolean }, plugins: ReadonlyArray<{ readonly name: string, readonly config: unknown }>): string[] {
  if (cache.cacheAuthorized === true) return []
  const auth = plugins.filter(u => AUTH_PLUGINS.includes(u.name))
  // One admitting anonymous requests lets the cache serve those.
  return auth.some(u => admitsAnonymous(u.config)) ? [] : auth.map(u => u.name).sort()
}

const admitsAnonymous = (config: unknown): boolean => {
  const c = typeof config === 'object' && config !== null ? config as { anonymous?: unknown, optional?: unknown } : {}
  return c.anonymous !== undefined || c.optional === true
}
