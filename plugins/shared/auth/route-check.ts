import type { PluginCheckRoute, PluginConfigProblem } from '../../../src/index.ts'
import { DEFAULTS as JWT_DEFAULTS } from '../../jwt-auth/schema.ts'
import { KEY_HEADER } from '../../key-auth/schema.ts'

// Another plugin's config is read as written: it may be invalid (PluginCheckRoute), never trusted to have its shape.
const fields = (v: unknown): Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null ? v as Record<string, unknown> : {}
const text = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/** A header name as the chain strips it: lower-case, `_` as `-` (chain.ts). */
export const stripForm = (name: string): string => name.toLowerCase().replaceAll('_', '-')

/** The headers each auth plugin reads its credential from, by config. */
const READS: Readonly<Record<string, (config: Readonly<Record<string, unknown>>) => string[]>> = {
  // A cookie location reads the Cookie header.
  'jwt-auth': c => (Array.isArray(c.from) ? c.from as unknown[] : JWT_DEFAULTS.from).flatMap(l => text(fields(l).header) ?? (text(fields(l).cookie) === undefined ? [] : ['cookie'])),
  'key-auth': c => [text(c.header) ?? KEY_HEADER],
  'basic-auth': () => ['authorization']
}

/** The headers an auth plugin reads its credential from. */
export const credentialHeaders = (plugin: string, config: unknown): string[] => READS[plugin]?.(fields(config)) ?? []

/** The headers each auth plugin sets upstream from what it verified, besides the identity headers, by config. */
const WRITES: Readonly<Record<string, (config: Readonly<Record<string, unknown>>) => string[]>> = {
  'jwt-auth': c => Object.values(fields(c.forwardClaims)).flatMap(h => text(h) ?? [])
}

/** The headers the auth plugins of a route set upstream from verified data (jwt-auth's forwardClaims), as `plugin` and `header`. */
export const verifiedHeaders = (route: PluginCheckRoute): Array<{ plugin: string, header: string }> =>
  route.plugins.flatMap(p => (WRITES[p.name]?.(fields(p.config)) ?? []).map(header => ({ plugin: p.name, header })))

/** Whom requests without credentials are admitted as: a consumer id, '' for none (optional), undefined: they are refused. */
const admits = (config: Readonly<Record<string, unknown>>): string | undefined =>
  text(config.anonymous) ?? (config.optional === true ? '' : undefined)

const shown = (admitted: string) => admitted === '' ? 'no consumer (optional)' : `consumer "${admitted}"`

/**
 * What keeps a route's auth plugins from working together (the chain, chain.ts), found at load
 * and reported at `plugin`'s config: admitting requests without credentials as another consumer
 * than an auth plugin that runs before it, or forwarding a claim in a header another one reads its
 * credential from (the chain removes it from every request, so that one would never find any).
 */
export function checkAuthRoute (plugin: string, config: unknown, route: PluginCheckRoute | undefined): PluginConfigProblem[] {
  if (route === undefined) return []
  const own = fields(config)
  const others = route.plugins.filter(p => p.name !== plugin && READS[p.name] !== undefined)
  const problems: PluginConfigProblem[] = []
  const admitted = admits(own)
  const first = route.plugins.find(p => READS[p.name] !== undefined && admits(fields(p.config)) !== undefined)
  if (admitted !== undefined && first !== undefined && first.name !== plugin) {
    const theirs = admits(fields(first.config)) as string
    if (theirs !== admitted) {
      problems.push({
        path: [text(own.anonymous) === undefined ? 'optional' : 'anonymous'],
        message: `admits requests without credentials as ${shown(admitted)}, but ${first.name} on this route admits them as ${shown(theirs)}: give the route's auth plugins the same anonymous consumer`
      })
    }
  }
  for (const [claim, header] of Object.entries(fields(own.forwardClaims))) {
    if (typeof header !== 'string') continue
    const reader = others.find(p => credentialHeaders(p.name, p.config).some(h => stripForm(h) === stripForm(header)))
    if (reader !== undefined) {
      problems.push({
        path: ['forwardClaims', claim],
        message: `"${header}" is where ${reader.name} on this route reads its credential: forwarded claims are removed from every request first, so ${reader.name} would never find one`
      })
    }
  }
  return problems
}
