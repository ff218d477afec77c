import { isForwardingHeader, isIdentityHeader, toMs, type PluginCheckRoute, type PluginConfigProblem } from '../../src/index.ts'
import { checkAuthRoute, credentialHeaders, stripForm } from '../shared/auth/route-check.ts'
import { algorithmsOf, keyMaterialProblem, MAX_KEY_TRIES, publicPartProblem, readPublicKeys, triedInTurn } from './public-keys.ts'
import { DEFAULTS, HMAC, JWKS_MAX, JWKS_MIN, type ASYMMETRIC, type JwtAuthConfig } from './schema.ts'

const isHmac = (a: string): boolean => (HMAC as readonly string[]).includes(a)

/** Whether the config gives keys itself (keys, jwksFile). */
export const hasStaticKeys = (config: JwtAuthConfig): boolean => config.keys !== undefined || config.jwksFile !== undefined

/** Where remote keys come from: jwksUri, else the issuer's discovery document, but only without a secret (the issuer is then only checked in claims). */
export const remoteKeysUrl = (config: JwtAuthConfig): string | undefined => config.jwksUri ?? (config.secret === undefined ? config.issuer : undefined)

/** Set by the gateway for every request: the trace it belongs to and its id. */
const TRACE_HEADERS = new Set(['traceparent', 'tracestate', 'x-request-id'])

/**
 * Request fields of HTTP (RFC 9110, 9111, 6265...) and Fetch that clients send themselves: a
 * forwarded claim's header is removed from every request on every route (a POST lost its
 * Content-Type). Hop-by-hop and framing ones (TE, Expect...) the schema refuses; Host has its own word.
 */
const REQUEST_FIELDS = new Set([
  'authorization', 'cookie', 'accept', 'origin', 'referer', 'user-agent', 'from', 'via', 'range', 'max-forwards', 'cache-control', 'pragma',
  'date', 'prefer', 'priority', 'early-data', 'alt-used', 'cdn-loop', 'dnt', 'upgrade-insecure-requests', 'last-event-id',
  'want-content-digest', 'want-repr-digest', 'want-digest', 'digest', 'repr-digest'
])
const REQUEST_FIELD_PREFIXES = ['content-', 'accept-', 'if-', 'sec-', 'access-control-request-']
const isRequestField = (name: string): boolean => REQUEST_FIELDS.has(name) || REQUEST_FIELD_PREFIXES.some(p => name.startsWith(p))

/** The longest clockTolerance: a token expired (or not valid yet) for longer is no clock skew. */
const CLOCK_TOLERANCE_MAX = '5m'

/**
 * Headers no claim may be forwarded in (the schema refuses hop-by-hop and framing ones): an
 * identity header would let a token's claim pose as the consumer, X-Forwarded-For and the like as
 * another client address, Host would let it pick the upstream's virtual host, and a header tokens
 * are read from would be removed from every request first.
 */
function forwardProblems (config: JwtAuthConfig): PluginConfigProblem[] {
  const from = credentialHeaders('jwt-auth', config).map(stripForm)
  const why = (lower: string): string | undefined => {
    if (isIdentityHeader(lower)) return 'is an identity header, set by auth plugins only'
    if (lower === 'host') return 'is set by the gateway for the route (preserveHost, hostHeader)'
    if (isForwardingHeader(lower)) return 'tells the upstream who the client is: the gateway sets it (server.trustProxy)'
    if (TRACE_HEADERS.has(lower)) return 'is set by the gateway for every request (trace context, request id)'
    if (from.includes(stripForm(lower))) return 'is where this plugin reads tokens (from): forwarded claims are removed from every request first, so no token would be found'
    if (isRequestField(stripForm(lower))) return 'is a request field clients send (RFC 9110, Fetch): forwarded claims are removed from every request on every route, so no client\'s would reach an upstream; use a header of your own (x-user-...)'
    return undefined
  }
  // Headers compared as the gateway removes a client's (stripForm): CGI, WSGI and PHP read x_tenant as X-Tenant.
  const first = new Map<string, [string, string]>()
  return Object.entries(config.forwardClaims ?? {}).flatMap(([claim, header]): PluginConfigProblem[] => {
    const problem = why(header.toLowerCase())
    if (problem !== undefined) return [{ path: ['forwardClaims', claim], message: `"${header}" ${problem}` }]
    const taken = first.get(stripForm(header))
    if (taken === undefined) first.set(stripForm(header), [claim, header])
    return taken === undefined ? [] : [{
      path: ['forwardClaims', claim],
      message: `"${header}" is the header of claim "${taken[0]}" too ("${taken[1]}": one header in any case, \`_\` or \`-\`): it would hold whichever is set last; one claim per header`
    }]
  })
}

/**
 * What a jwt-auth config could never verify with, found at load (the schema asks for some source
 * of keys); setup then assumes none of it. Static keys are read here too: a private, malformed or
 * unusable key (X25519 signs nothing) is an error at its key, as are algorithms none of them fits,
 * and a secret that is key material or a member of those keys.
 */
export function checkJwtAuth (config: JwtAuthConfig, route?: PluginCheckRoute): PluginConfigProblem[] {
  const problems = [...forwardProblems(config), ...checkAuthRoute('jwt-auth', config, route)]
  if (config.clockTolerance !== undefined && toMs(config.clockTolerance) > toMs(CLOCK_TOLERANCE_MAX)) {
    problems.push({ path: ['clockTolerance'], message: `must be at most ${CLOCK_TOLERANCE_MAX}: clocks apart by more are a fault to fix, and a longer leeway takes expired tokens` })
  }
  // No provider's iss holds a user and password: with them, every token and discovery document would be refused.
  if (config.issuer !== undefined && /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(config.issuer)) {
    problems.push({ path: ['issuer'], message: 'holds a user and password, which no token\'s iss has: give them in jwksUri (https://svc:${PASSWORD}@idp.example/keys) and keep issuer for the iss check' })
  }
  const keyMaterial = config.secret === undefined ? undefined : keyMaterialProblem(config.secret)
  if (keyMaterial !== undefined) problems.push({ path: ['secret'], message: keyMaterial })
  const isStatic = hasStaticKeys(config)
  if (isStatic && config.jwksUri !== undefined) return [...problems, { path: ['jwksUri'], message: 'not with static keys (keys, jwksFile): one source of keys' }]
  const keys = isStatic || remoteKeysUrl(config) !== undefined
  const algorithms = config.algorithms ?? []
  for (const [name, max] of Object.entries(JWKS_MAX)) {
    const value = config.jwks?.[name as keyof typeof JWKS_MAX]
    if (value !== undefined && toMs(value) > toMs(max)) problems.push({ path: ['jwks', name], message: `must be at most ${max}` })
  }
  for (const [name, [min, why]] of Object.entries(JWKS_MIN)) {
    const value = config.jwks?.[name as keyof typeof JWKS_MIN]
    if (value !== undefined && toMs(value) < toMs(min)) problems.push({ path: ['jwks', name], message: `must be at least ${min}: ${why}` })
  }
  const { maxRefresh, cooldown } = config.jwks ?? {}
  // maxRefresh wins over the cooldown (remote-keys.ts refreshDelay): the default cooldown (30s) is above maxRefresh's floor (10s) too.
  if (maxRefresh !== undefined && toMs(maxRefresh) < toMs(cooldown ?? DEFAULTS.jwks.cooldown)) {
    const shown = cooldown ?? `${DEFAULTS.jwks.cooldown / 1000}s, its default`
    problems.push({ path: ['jwks', 'maxRefresh'], message: `must be at least jwks.cooldown (${shown}): it would refresh the key set more often than the cooldown lets any fetch run` })
  }
  const hmac = algorithms.filter(isHmac)
  if (hmac.length > 0 && config.secret === undefined) problems.push({ path: ['algorithms'], message: `${hmac.join(', ')} need secret` })
  const asymmetric = algorithms.filter(a => !isHmac(a))
  // Only a secret gets here (the schema asks for some source of keys): an issuer beside it is no source of keys.
  if (asymmetric.length > 0 && !keys) problems.push({ path: ['algorithms'], message: `${asymmetric.join(', ')} need jwksUri, keys or jwksFile (with secret, issuer is only checked against iss: no discovery)` })
  if (isStatic) {
    const read = readPublicKeys(config.keys ?? [], config.jwksFile)
    problems.push(...read.problems)
    const publicPart = config.secret === undefined || keyMaterial !== undefined ? undefined : publicPartProblem(config.secret, read.jwks)
    if (publicPart !== undefined) problems.push({ path: ['secret'], message: publicPart })
    const fitting = new Set(read.jwks.flatMap(algorithmsOf))
    if (read.problems.length === 0 && asymmetric.length > 0 && !asymmetric.some(a => fitting.has(a as typeof ASYMMETRIC[number]))) {
      problems.push({ path: ['algorithms'], message: `${asymmetric.join(', ')} fit none of the keys (they verify ${[...fitting].join(', ') || 'nothing'})` })
    }
    if (read.problems.length === 0 && fitting.size === 0 && config.secret === undefined) problems.push({ path: [config.keys === undefined ? 'jwksFile' : 'keys'], message: 'no key to verify tokens with' })
    for (const alg of fitting) {
      const inTurn = read.jwks.filter(k => triedInTurn(k) && algorithmsOf(k).includes(alg)).length
      if (inTurn > MAX_KEY_TRIES) {
        problems.push({
          path: [config.keys === undefined ? 'jwksFile' : 'keys'],
          message: `${inTurn} keys without kid fit ${alg}: a token whose kid picks no key is checked with the first ${MAX_KEY_TRIES} only, so the others would verify nothing; give them a kid (as JWKs), or keep ${MAX_KEY_TRIES} per algorithm`
        })
        break
      }
    }
  }
  return problems
}
