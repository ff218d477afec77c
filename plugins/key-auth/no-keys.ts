import type { PluginWarningsContext } from '../../src/index.ts'

/** The auth plugins that share a route's chain with key-auth: any of them may admit a request key-auth does not. */
const OTHER_AUTH = ['basic-auth', 'jwt-auth']

const admitsAnonymous = (config: unknown): boolean => {
  const c = typeof config === 'object' && config !== null ? config as { anonymous?: unknown, optional?: unknown } : {}
  return c.anonymous !== undefined || c.optional === true
}

/**
 * A key-auth that accepts no key (no consumer holds one, no store may hold more) on a route that
 * admits no request without credentials: a 401 for every request, or every one with a key where
 * another auth plugin admits its own.
 */
export function noKeysWarnings (config: { readonly store?: string }, ctx: PluginWarningsContext): string[] {
  if (config.store !== undefined || ctx.consumers.credentialsFor('key-auth').length > 0) return []
  const auth = ctx.plugins.filter(p => p.name === 'key-auth' || OTHER_AUTH.includes(p.name))
  if (auth.some(p => admitsAnonymous(p.config))) return []
  const others = auth.filter(p => p.name !== 'key-auth').map(p => p.name)
  const noKey = `no consumer has a key-auth key (consumers[].credentials.key-auth.keys) and key-auth has no store, so it accepts no key`
  return [others.length === 0
    ? `${noKey}, and it admits no request without one (no anonymous): every request is answered 401`
    : `${noKey}: only ${others.join(' and ')} credentials admit a request`]
}
