import { hash } from 'node:crypto'
import { definePlugin, toMs, type PluginSetupContext } from '../../src/index.ts'
import { authenticator, type Outcome } from '../shared/auth/authenticator.ts'
import { bearerChallenge } from '../shared/auth/challenge.ts'
import { compileLocations } from '../shared/auth/location.ts'
import { compileClaims } from './claims.ts'
import { failureOf, TOO_LARGE } from './failures.ts'
import { checkJwtAuth } from './check.ts'
import { DEFAULTS, forwardedHeaders, JwtAuthSchema, type JwtAuthConfig } from './schema.ts'
import { TokenCache } from './token-cache.ts'

// jose costs about 35 ms of CPU to load: only a config with jwt-auth pays it.
const loadJose = () => Promise.all([import('./key-source.ts'), import('./token-verifier.ts')])

/** Where a route reads tokens and how it answers without one (maxTokenBytes is checked before the cache): not what a token is worth there. */
const NOT_WORTH = new Set(['from', 'hideCredentials', 'optional', 'anonymous', 'realm', 'maxTokenBytes'])

/**
 * The cache of the config's routes whose other settings are all the same (keys, issuer, audience,
 * algorithms, claims checks, what a token admits as, cacheSize...): a token they verified is worth
 * the same on each. One per config, so a reload starts empty and a removed key stops verifying.
 */
function tokenCache (config: JwtAuthConfig, ctx: PluginSetupContext): TokenCache | undefined {
  const size = config.cacheSize ?? DEFAULTS.cacheSize
  if (size === 0) return undefined
  // Hashed: the settings hold the secret and keys, and can be long.
  const worth = hash('sha256', JSON.stringify(Object.entries(config).filter(([name]) => !NOT_WORTH.has(name))), 'base64')
  return ctx.shared(`cache ${worth}`, () => new TokenCache(size))
}

/** `value` and every object in it, frozen (iteratively: a token's JSON may nest thousands deep). */
function deepFreeze<T> (value: T): T {
  const pending: unknown[] = [value]
  for (let v = pending.pop(); v !== undefined; v = pending.pop()) {
    if (typeof v !== 'object' || v === null || Object.isFrozen(v)) continue
    Object.freeze(v)
    for (const item of Object.values(v)) pending.push(item)
  }
  return value
}

/**
 * Bearer JWTs verified with jose against an OIDC provider's keys, a JWKS URL, static keys or a
 * secret. Sets req.consumer and req.locals.claims (the verified claims, frozen, for later plugins).
 */
export default definePlugin({
  name: 'jwt-auth',
  priority: 1450,
  schema: JwtAuthSchema,
  check: checkJwtAuth,
  // Set from a verified token only: the gateway removes a client's from every request.
  vouchedHeaders: forwardedHeaders,
  async setup (config, ctx) {
    const [{ keySource }, { tokenVerifier }] = await loadJose()
    const { keys, algorithms: supported, secretCheck } = keySource(config, ctx)
    // What a config could lack (keys, usable keys, algorithms they fit) was checked at load (checkJwtAuth).
    const algorithms = config.algorithms ?? supported

    const verifyToken = tokenVerifier(keys, config.secret, {
      algorithms,
      ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
      ...(config.audience === undefined ? {} : { audience: config.audience }),
      clockTolerance: toMs(config.clockTolerance ?? DEFAULTS.clockTolerance) / 1000,
      requiredClaims: config.requireExp === false ? [] : ['exp']
    }, secretCheck)
    const admit = compileClaims(config, ctx.consumers, config.consumerClaim ?? DEFAULTS.consumerClaim)
    const cache = tokenCache(config, ctx)
    const maxBytes = config.maxTokenBytes ?? DEFAULTS.maxTokenBytes
    const location = compileLocations(config.from ?? DEFAULTS.from, ctx)

    const verify = (token: string): Outcome | Promise<Outcome> => {
      if (token.length > maxBytes) return TOO_LARGE
      const generation = keys?.generation ?? 0
      const key = cache === undefined ? '' : TokenCache.key(token)
      const hit = cache?.get(key, generation)
      if (hit !== undefined) return hit
      return verifyToken(token).then(claims => {
        // Frozen once, here: a cached token's claims are the same object on each of its requests.
        const outcome = admit(deepFreeze(claims))
        if (cache !== undefined && !('status' in outcome) && typeof claims.exp === 'number') cache.set(key, outcome, claims.exp, generation)
        return outcome
      }, failureOf)
    }

    const onRequest = authenticator({
      plugin: 'jwt-auth',
      challenge: bearerChallenge(config.realm ?? 'portcullis'),
      anonymous: config.anonymous,
      optional: config.optional,
      hide: config.hideCredentials === true ? req => { location.remove(req) } : undefined,
      remove: location.removeUnjudged,
      removeFromQuery: location.removeFromQuery,
      extract: req => location.read(req),
      scrub: location.scrub,
      verify
    }, ctx)
    return { onRequest }
  }
})
