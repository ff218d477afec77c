import type { PluginCheckRoute, PluginConfigProblem } from '../../../src/index.ts'
import { forwardedHeaders, DEFAULTS as JWT_DEFAULTS } from '../../jwt-auth/schema.ts'
import { KEY_HEADER } from '../../key-auth/schema.ts'
import { samePhpName, sameQueryName } from './location.ts'

// Another plugin's config is read as written: it may be invalid (PluginCheckRoute), never trusted to have its shape.
const fields = (v: unknown): Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null ? v as Record<string, unknown> : {}
const text = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/** A header name as the gateway removes a client's vouched header: lower-case, `_` as `-` (PluginDefinition.vouchedHeaders). */
export const stripForm = (name: string): string => name.toLowerCase().replaceAll('_', '-')

/**
 * Where an auth plugin reads a credential: a header (`scheme` lower-case, undefined for the whole
 * value; `name` lower-case), a query parameter or a cookie; `at`, the key of its config that says so ([]: none).
 */
interface Place { readonly in: 'header' | 'query' | 'cookie', readonly name: string, readonly scheme?: string | undefined, readonly at: Array<string | number> }

/** A location as LocationSchema has it (location.ts), as written: nothing when it is not one. */
function place (location: unknown, at: Array<string | number>): Place[] {
  const l = fields(location)
  const header = text(l.header)
  if (header !== undefined) return [{ in: 'header', name: header.toLowerCase(), scheme: text(l.scheme)?.toLowerCase(), at }]
  const query = text(l.query)
  if (query !== undefined) return [{ in: 'query', name: query, at }]
  const cookie = text(l.cookie)
  return cookie === undefined ? [] : [{ in: 'cookie', name: cookie, at }]
}

type PlacesOf = (config: Readonly<Record<string, unknown>>) => Place[]

/** Where each auth plugin reads its credential, by config. */
const PLACES: Readonly<Record<string, PlacesOf>> = {
  'jwt-auth': c => Array.isArray(c.from) ? (c.from as unknown[]).flatMap((l, i) => place(l, ['from', i])) : JWT_DEFAULTS.from.flatMap(l => place(l, [])),
  'key-auth': c => [...place({ header: text(c.header) ?? KEY_HEADER }, ['header']), ...place({ query: c.query }, ['query'])],
  'basic-auth': () => [{ in: 'header', name: 'authorization', scheme: 'basic', at: [] }]
}

/** Whether `plugin` is one of the auth plugins that share a route's chain. */
const isAuth = (plugin: string): boolean => Object.hasOwn(PLACES, plugin)

const placesOf = (plugin: string, config: unknown): Place[] => isAuth(plugin) ? (PLACES[plugin] as PlacesOf)(fields(config)) : []

/** The header a place is read from: a cookie location reads the Cookie header. */
const headerOf = (p: Place): string | undefined => p.in === 'header' ? p.name : p.in === 'cookie' ? 'cookie' : undefined

/** The headers an auth plugin reads its credential from. */
export const credentialHeaders = (plugin: string, config: unknown): string[] => placesOf(plugin, config).flatMap(p => headerOf(p) ?? [])

/** The headers each auth plugin sets upstream from what it verified, besides the identity headers, by config: its vouchedHeaders. */
const WRITES: Readonly<Record<string, (config: unknown) => string[]>> = {
  'jwt-auth': forwardedHeaders
}

/** The headers the auth plugins of a route set upstream from verified data (jwt-auth's forwardClaims), as `plugin` and `header`. */
export const verifiedHeaders = (route: PluginCheckRoute): Array<{ plugin: string, header: string }> =>
  route.plugins.flatMap(p => (WRITES[p.name]?.(p.config) ?? []).map(header => ({ plugin: p.name, header })))

/**
 * The headers any auth plugin config of the whole config sets upstream from verified data, in
 * stripForm, by the plugin that sets it: the gateway removes the client's on every route, whichever
 * route's config forwards it (PluginCheckRoute.configsOf).
 */
export function configVerifiedHeaders (configsOf: (plugin: string) => readonly unknown[]): ReadonlyMap<string, string> {
  const lists = WRITERS.map(([plugin]) => configsOf(plugin))
  // Every route's check gets the same lists of a config: worked out once, not once per route (routes × routes).
  const known = verifiedByLists.get(lists[0] as readonly unknown[])
  if (known !== undefined && known.lists.every((l, i) => l === lists[i])) return known.headers
  const headers = new Map(WRITERS.flatMap(([plugin, writes], i) => (lists[i] as readonly unknown[]).flatMap(c => writes(c).map(h => [stripForm(h), plugin] as const))))
  verifiedByLists.set(lists[0] as readonly unknown[], { lists, headers })
  return headers
}
const WRITERS = Object.entries(WRITES)
const verifiedByLists = new WeakMap<readonly unknown[], { lists: ReadonlyArray<readonly unknown[]>, headers: ReadonlyMap<string, string> }>()

/** Whom requests without credentials are admitted as: a consumer id, '' for none (optional), undefined: they are refused. */
const admits = (config: Readonly<Record<string, unknown>>): string | undefined =>
  text(config.anonymous) ?? (config.optional === true ? '' : undefined)

const shown = (admitted: string) => admitted === '' ? 'no consumer (optional)' : `consumer "${admitted}"`

const WHERE = { header: 'header', query: 'query parameter', cookie: 'cookie' } as const

/**
 * Whether two places are one place's name as upstreams read it: a header in either spelling, a
 * cookie as PHP reads it (`access.token` is `access_token`), a query parameter so or in any case (ASP.NET).
 */
const sameName = (a: Place, b: Place): boolean =>
  a.in === b.in && (a.in === 'header' ? stripForm(a.name) === stripForm(b.name) : a.in === 'query' ? sameQueryName(a.name, b.name) : samePhpName(a.name, b.name))

/**
 * Whether two places of sameName are written so that each plugin removes the other's as a copy
 * (CompiledLocation.scrub): a header in another spelling, a query parameter in another case.
 */
const otherSpelling = (a: Place, b: Place): boolean =>
  a.in === 'header' ? a.name !== b.name : a.in === 'query' && !samePhpName(a.name, b.name)

/**
 * Whether `first`, which runs before, decides every request `later` would find a credential in:
 * the same query parameter or cookie, or the same header when `first` takes its whole value or
 * both take the same scheme (only distinct schemes, Bearer and Basic, tell them apart).
 */
const shadows = (first: Place, later: Place): boolean =>
  sameName(first, later) && (first.scheme === undefined || first.scheme === later.scheme)

/**
 * Where `plugin` reads a credential that an auth plugin before it on the route always takes: that
 * one decides, so `plugin` never authenticates anyone there. Or a header that one reads in another
 * spelling, schemes or not, or a query parameter in another case: each plugin removes those
 * (CompiledLocation.scrub), so one would remove the other's credential.
 */
function shadowedPlaces (plugin: string, places: readonly Place[], route: PluginCheckRoute): PluginConfigProblem[] {
  const before = route.plugins.slice(0, route.plugins.findIndex(p => p.name === plugin)).filter(p => isAuth(p.name))
  return places.flatMap(place => {
    for (const p of before) {
      const theirs = placesOf(p.name, p.config)
      const spelt = theirs.find(f => sameName(f, place) && otherSpelling(f, place))
      if (spelt !== undefined) {
        return [{
          path: place.at,
          message: place.in === 'header'
            ? `reads its credential from header "${place.name}", which ${p.name} on this route reads as "${spelt.name}": one header to CGI, WSGI and PHP upstreams, ` +
              'and an auth plugin removes its headers\' other spellings, so one would remove the other\'s credential; spell both the same (and give them distinct schemes), or use another header'
            : `reads its credential from query parameter "${place.name}", which ${p.name} on this route reads as "${spelt.name}": one name to ASP.NET upstreams, ` +
              'and an auth plugin removes its query parameter in another case, so one would remove the other\'s credential; use another query parameter'
        }]
      }
      const first = theirs.find(f => shadows(f, place))
      if (first === undefined) continue
      const how = place.in !== 'header' ? '' : first.scheme === undefined ? ' (its whole value, no scheme)' : ` (with the same scheme, ${first.scheme})`
      const as = first.name === place.name ? '' : ` (as "${first.name}", one name to PHP)`
      return [{
        path: place.at,
        message: `reads its credential from ${WHERE[place.in]} "${place.name}", as ${p.name} on this route does first${as}${how}: the first auth plugin to find a credential decides, ` +
          `so ${plugin} would never authenticate anyone with one there; use another ${WHERE[place.in]}${place.in === 'header' ? ', or distinct schemes' : ''}`
      }]
    }
    return []
  })
}

/**
 * Where `plugin` reads a credential that an auth plugin of another route forwards a claim in:
 * removed from every request on every route (PluginDefinition.vouchedHeaders), so never found. The
 * route's own forwarded claims are reported at the claim (checkAuthRoute).
 */
function removedPlaces (plugin: string, places: readonly Place[], route: PluginCheckRoute): PluginConfigProblem[] {
  const onRoute = new Set(verifiedHeaders(route).map(v => stripForm(v.header)))
  const removed = configVerifiedHeaders(name => route.configsOf(name))
  return places.flatMap(place => {
    const header = headerOf(place)
    const by = header === undefined || onRoute.has(stripForm(header)) ? undefined : removed.get(stripForm(header))
    return by === undefined
      ? []
      : [{ path: place.at, message: `reads its credential from "${header}", which ${by} forwards a claim in elsewhere in the config (forwardClaims): such headers are removed from every request on every route, so ${plugin} would never find one` }]
  })
}

/** Whether a header's value may be read by both places: they have no distinct schemes. */
const overlap = (a: Place, b: Place): boolean => a.scheme === undefined || b.scheme === undefined || a.scheme === b.scheme

/**
 * Whether two places of one plugin are one place as an upstream reads them (sameName), but for a
 * header with distinct schemes, spelt the same (in two spellings, each location's scrub would remove the other's).
 */
const samePlace = (a: Place, b: Place): boolean => sameName(a, b) && (a.in !== 'header' || a.name !== b.name || overlap(a, b))

/**
 * What is wrong with an auth plugin's own places, whatever the route: two that are one (a value
 * at the place that did not decide is removed: it would take the one that did with it); a
 * Sec-WebSocket-Protocol header with hideCredentials, which removes it whole.
 */
function ownProblems (config: unknown, places: readonly Place[]): PluginConfigProblem[] {
  const problems: PluginConfigProblem[] = []
  places.forEach((place, i) => {
    const first = places.findIndex(p => samePlace(p, place))
    if (first < i) {
      const other = places[first] as Place
      const where = other.at.map(k => typeof k === 'number' ? `[${k}]` : k).join('')
      const how = place.in === 'header' ? (overlap(place, other) ? ' without distinct schemes' : ' in another spelling') : otherSpelling(place, other) ? ' in another case' : ''
      problems.push({ path: place.at, message: `reads where ${where} does (the same ${WHERE[place.in]}${how}): name each place once` })
    }
  })
  if (fields(config).hideCredentials === true && places.some(p => p.in === 'header' && stripForm(p.name) === 'sec-websocket-protocol')) {
    problems.push({
      path: ['hideCredentials'],
      message: 'would remove the whole Sec-WebSocket-Protocol header the credential is read from: the upstream could then select no subprotocol, and WebSocket clients ' +
        'abort a handshake that selects none of those they offered; leave hideCredentials off (the upstream selects the credential as its subprotocol) or read it elsewhere'
    })
  }
  return problems
}

/**
 * What keeps a route's auth plugins from working together (the chain, chain.ts), found at load
 * and reported at `plugin`'s config: admitting requests without credentials as another consumer
 * than an auth plugin that runs before it; forwarding a claim in a header another one reads its
 * credential from, or reading it from one a jwt-auth anywhere in the config forwards a claim in
 * (the gateway removes those from every request, so that one would never find any); reading it
 * where an auth plugin that runs before it reads its own (that one decides every such request).
 * And, without a route too, what is wrong with its own places (ownProblems).
 */
export function checkAuthRoute (plugin: string, config: unknown, route: PluginCheckRoute | undefined): PluginConfigProblem[] {
  const problems = ownProblems(config, placesOf(plugin, config))
  if (route === undefined) return problems
  const own = fields(config)
  const others = route.plugins.filter(p => p.name !== plugin && isAuth(p.name))
  const admitted = admits(own)
  const first = route.plugins.find(p => isAuth(p.name) && admits(fields(p.config)) !== undefined)
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
  const places = placesOf(plugin, config)
  return [...problems, ...removedPlaces(plugin, places, route), ...shadowedPlaces(plugin, places, route)]
}
