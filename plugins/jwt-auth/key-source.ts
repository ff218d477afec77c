import type { PluginSetupContext } from '../../src/index.ts'
import { hideUrlSecrets, toMs } from '../../src/index.ts'
import { holdKeys, MISSING_KID_WARNING } from './held-keys.ts'
import { RemoteKeys } from './remote-keys.ts'
import { ASYMMETRIC, DEFAULTS, HMAC, JWKS_MIN, type JwtAuthConfig } from './schema.ts'
import { staticKeySet } from './static-keys.ts'
import { hasStaticKeys, remoteKeysUrl } from './check.ts'
import type { KeySource, SecretCheck } from './token-verifier.ts'

/**
 * The keys a route verifies with, and the algorithms it allows by default: a remote key set
 * (jwksUri, else the issuer's discovery document; one per source and settings for the whole
 * config, its last good set, fetches, cooldown and refresh timer per source, held across reloads),
 * or static keys (one set per config too); plus the secret for HMAC, checked against a remote set
 * (`secretCheck`: static keys' members are config errors at load).
 */
export function keySource (config: JwtAuthConfig, ctx: PluginSetupContext): { keys: KeySource | undefined, algorithms: string[], secretCheck?: SecretCheck } {
  const hmac = config.secret === undefined ? [] : [...HMAC]
  if (hasStaticKeys(config)) {
    // Read once per config for the routes that name them: routes sharing a token cache (index.ts)
    // then verify with the very same keys, even if the JWKS file changed during the load.
    const set = ctx.shared(`static keys ${JSON.stringify([config.keys ?? [], config.jwksFile])}`, () => {
      // Once per set (per config): clients choose what they send, so each token cannot be a line.
      let said = false
      return staticKeySet(config.keys ?? [], config.jwksFile, () => {
        if (said) return
        said = true
        ctx.log.warn({ keys: config.jwksFile === undefined ? 'keys' : 'jwksFile' }, MISSING_KID_WARNING)
      })
    })
    return { keys: { key: set.key, generation: 0 }, algorithms: [...set.algorithms, ...hmac] }
  }
  const url = remoteKeysUrl(config)
  if (url === undefined) return { keys: undefined, algorithms: hmac }
  const source = config.jwksUri !== undefined ? { jwksUri: config.jwksUri } : { issuer: url }
  // A provider's keys sign the tokens of all its clients (Google's and Entra ID's are shared by every tenant too).
  if (config.audience === undefined) {
    ctx.log.warn({ url: hideUrlSecrets(url) }, 'jwt-auth: remote keys (jwksUri or issuer) without audience: any token the provider signs, for any client, is accepted; set audience to the value your API is registered under')
  }
  const j = { ...DEFAULTS.jwks, ...config.jwks }
  // A request waits for one fetch at most (remote-keys.ts key), after discovery's with an issuer; its
  // onRequest is cut at server.pluginTimeout. Left out, the timeout is 5 s, less under a short server.pluginTimeout; set, it must fit.
  const fetches = 'issuer' in source ? 2 : 1
  const timeoutMs = config.jwks?.timeout === undefined ? Math.min(toMs(j.timeout), Math.ceil(ctx.hookTimeoutMs / fetches) - 1) : toMs(j.timeout)
  const options = { source, timeoutMs, cooldownMs: toMs(j.cooldown), refreshMs: toMs(j.refresh), maxRefreshMs: toMs(j.maxRefresh) }
  const floorMs = toMs(JWKS_MIN.timeout[0])
  // Worked out below the floor, every fetch would be cut before most providers answer: 503 for ever.
  if (config.jwks?.timeout === undefined && timeoutMs < floorMs) {
    throw new Error(`server.pluginTimeout (${ctx.hookTimeoutMs} ms) leaves jwks.timeout, left out, ${timeoutMs} ms${'issuer' in source ? ' (two fetches with discovery)' : ''}: below its floor of ${JWKS_MIN.timeout[0]}, a fetch is cut before the provider answers (503 auth_unavailable); raise server.pluginTimeout above ${fetches * floorMs} ms`)
  }
  const waitMs = fetches * options.timeoutMs
  if (waitMs >= ctx.hookTimeoutMs) {
    throw new Error(`jwks.timeout (${options.timeoutMs} ms${'issuer' in source ? ', twice with discovery' : ''}) must be less than server.pluginTimeout (${ctx.hookTimeoutMs} ms): a request may wait for the key set's fetch, and its onRequest is cut at server.pluginTimeout (504); lower jwks.timeout or raise server.pluginTimeout`)
  }
  const keys = ctx.shared(`keys ${JSON.stringify(options)}`, () => {
    if (url.startsWith('http://')) ctx.log.warn({ url: hideUrlSecrets(url) }, 'jwt-auth: keys fetched over plain http://; use https:// in production')
    const remote = new RemoteKeys(options, ctx.log, ctx.metrics, holdKeys(JSON.stringify(source)))
    remote.start()
    return remote
  })
  const secretCheck = config.secret === undefined ? undefined : keys.secretCheck(config.secret, ctx.routeName)
  return { keys, algorithms: [...ASYMMETRIC, ...hmac], ...(secretCheck === undefined ? {} : { secretCheck }) }
}
