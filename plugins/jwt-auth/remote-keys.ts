import { hash } from 'node:crypto'
import type { CryptoKey, JSONWebKeySet, JWK, JWSHeaderParameters, FlattenedJWSInput } from 'jose'
import type { Logger } from 'pino'
import { request } from 'undici'
import { hideUrlSecrets, type PluginMetrics } from '../../src/index.ts'
import { HeldKeys, MISSING_KID_WARNING, type KeyHolder, type Target } from './held-keys.ts'
import { keySet, type KeyFunction } from './key-set.ts'
import { publicJwk, type PublicParts } from './public-keys.ts'

export interface RemoteKeyOptions {
  /** The OIDC issuer whose discovery document names the JWKS, or the JWKS URL itself. */
  readonly source: { issuer: string } | { jwksUri: string }
  readonly timeoutMs: number
  readonly cooldownMs: number
  readonly refreshMs: number
  readonly maxRefreshMs: number
}

const MAX_BODY = 1 << 20
/**
 * Keys of a set read, the rest left out: providers publish a handful. A 1 MB set of 500,000 junk
 * entries took 2.4 s of the event loop to examine (and a warning each), at every fetch.
 */
const MAX_KEYS = 100
/** Kids (and reasons) the warning about unusable keys names. */
const NAMED = 5

/**
 * Thrown when no key set has ever been fetched (the provider was down from the start): 503, not
 * 401, with Retry-After the seconds until the next fetch may run (at least 1).
 */
export class KeysUnavailable extends Error {
  readonly code = 'ERR_KEYS_UNAVAILABLE'
  readonly retryAfter: number
  constructor (message: string, waitMs: number) {
    super(message)
    this.retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
  }
}

/**
 * Thrown for an HMAC token when a fetched set made its route's secret public (failures.ts: 401 as
 * a bad signature, counted as public_secret). One object: a request throwing it builds no stack.
 */
const PUBLIC_SECRET = Object.assign(new Error('the secret is a member of a key the key set publishes'), { code: 'ERR_PUBLIC_SECRET' })

const PUBLIC_SECRET_ERROR = 'jwt-auth: the secret of these routes is a member of a key the key set publishes: anyone could sign HS256/384/512 tokens with it, so theirs are refused (401) until the secret is changed; give them a shared secret of their own'

const ACCEPT = { accept: 'application/json' }
const decoded = (part: string): string => { try { return decodeURIComponent(part) } catch { return part } }

function fetchTarget (url: string): Target {
  const shown = hideUrlSecrets(url)
  // Not a URL (the schema only asks for http(s)://): each fetch fails, and says so.
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  if (parsed === undefined || (parsed.username === '' && parsed.password === '')) return { url, headers: ACCEPT, shown }
  const basic = Buffer.from(`${decoded(parsed.username)}:${decoded(parsed.password)}`).toString('base64')
  parsed.username = parsed.password = ''
  return { url: parsed.href, headers: { ...ACCEPT, authorization: `Basic ${basic}` }, shown }
}

async function getJson (target: Target, timeoutMs: number): Promise<{ body: unknown, digest: string, maxAgeMs: number | undefined }> {
  const res = await request(target.url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs), headers: target.headers })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) { res.body.destroy(); throw new Error(`${target.shown}: response larger than ${MAX_BODY} bytes`) }
    chunks.push(chunk)
  }
  if (res.statusCode !== 200) throw new Error(`${target.shown} answered ${res.statusCode}`)
  const cacheControl = String(res.headers['cache-control'] ?? '')
  const maxAge = /(?:^|[,\s])max-age=(\d+)/i.exec(cacheControl)?.[1]
  const noCache = /no-cache|no-store/i.test(cacheControl)
  const raw = Buffer.concat(chunks)
  return { body: JSON.parse(raw.toString('utf8')), digest: hash('sha256', raw, 'base64'), maxAgeMs: noCache ? 0 : maxAge === undefined ? undefined : Number(maxAge) * 1000 }
}

/** Characters of a discovery document's value a failure quotes: the warning is repeated each cooldown. */
const QUOTED_MAX = 200

/** `value` as JSON, cut to QUOTED_MAX characters (an issuer of 900 KB was quoted whole). */
function quoted (value: unknown): string {
  const text = String(JSON.stringify(value))
  return text.length <= QUOTED_MAX ? text : `${text.slice(0, QUOTED_MAX)}…(+${text.length - QUOTED_MAX} characters)`
}

/**
 * A provider's key set: fetched at setup (not awaited), refreshed in the background before its
 * Cache-Control max-age runs out, refetched for an unknown kid at most once per cooldown. When a
 * fetch fails the last good set keeps serving. Shared by every route of a config that names the
 * same source with the same jwks settings; the set, the fetch in flight, the cooldown and the
 * refresh timer are the source's (HeldKeys): shared with the routes of other settings and the next
 * config.
 */
export class RemoteKeys implements KeyHolder {
  readonly #o: RemoteKeyOptions
  readonly #log: Logger
  readonly #fetches: ReturnType<PluginMetrics['counter']>
  /** The issuer's discovery document, when the key set's URL comes from it. */
  readonly #discovery: Target | undefined
  readonly #held: HeldKeys
  /** The secrets of the routes verifying with this set too (HMAC), by their SHA-256: the secret, the routes giving it. */
  readonly #secrets = new Map<string, { secret: string, routes: string[] }>()
  /** Whether this config is in service: only then does it say which secrets are public. */
  #inService = false
  #disposed = false

  constructor (options: RemoteKeyOptions, log: Logger, metrics: PluginMetrics, held = new HeldKeys()) {
    this.#o = options
    this.#log = log
    this.#held = held
    const { source } = options
    if ('jwksUri' in source) held.jwks ??= fetchTarget(source.jwksUri)
    this.#discovery = 'issuer' in source ? fetchTarget(`${source.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`) : undefined
    this.#fetches = metrics.counter({
      name: 'portcullis_jwt_jwks_fetches_total',
      help: 'Key set fetches (OIDC discovery included) by why they ran and how they ended.',
      labelNames: ['trigger', 'result']
    })
    held.join(this)
  }

  get cooldownMs (): number { return this.#o.cooldownMs }

  get generation (): number { return this.#held.generation }

  /**
   * Fetches the key set, unless the source was fetched before (another route's settings, the
   * config before): then its next fetch runs when these settings want it, if sooner than planned.
   */
  start (): void {
    const held = this.#held
    if (held.inflight !== undefined) return
    if (held.lastAttempt === -Infinity) void this.refresh('initial')
    else held.scheduleFor(this)
  }

  /** The jose key function: the key for a token's header. */
  readonly key = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const held = this.#held
    // One fetch a request: the set just fetched lacks the kid (401 unknown_key). Another fetch
    // would keep the request past the one fetch server.pluginTimeout is checked against (key-source.ts).
    if (held.set === undefined) return await (await this.#firstSet())(header, token) as CryptoKey
    try {
      return await held.set(header, token) as CryptoKey
    } catch (err) {
      // An unknown kid: perhaps a new key (rotation). A token without kid names no new key: nothing to fetch.
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || header.kid === undefined) throw err
      // Junk tokens cannot make this run more than once per cooldown (the source's: across routes and reloads).
      if (held.inflight === undefined) {
        if (held.waitMs() > 0) throw err
        void this.refresh('unknown_kid')
      }
      await held.inflight
      return await held.set(header, token) as CryptoKey
    }
  }

  /** The fetch in flight, or one started now (unless within the backoff): awaited while what a token needs never came. */
  async #firstFetch (): Promise<void> {
    const held = this.#held
    if (held.inflight === undefined && held.waitMs() === 0) void this.refresh('initial')
    await held.inflight
  }

  /** The set once a fetch brought one (#firstFetch); KeysUnavailable after it without one. */
  async #firstSet (): Promise<KeyFunction> {
    await this.#firstFetch()
    const fetched = this.#held.set
    if (fetched === undefined) throw new KeysUnavailable('no key set could be fetched yet', this.#held.waitMs())
    return fetched
  }

  /**
   * What a route's HMAC tokens go through when its secret sits beside this key set (nothing tells
   * at load whether the secret is a member of a remote key, n or x...): it throws PUBLIC_SECRET
   * once a fetched set showed it so, for as long as the source is held; before any set was fetched,
   * a token waits for one as a token for a key of the set does (503 when none comes). A set with no
   * usable key (empty, only use: enc) is not installed but was examined: HMAC tokens verify.
   * Made at setup.
   */
  secretCheck (secret: string, route: string): () => Promise<void> | undefined {
    const held = this.#held
    const digest = hash('sha256', secret, 'base64')
    const given = this.#secrets.get(digest)
    if (given !== undefined) given.routes.push(route)
    else {
      this.#secrets.set(digest, { secret, routes: [route] })
      // A set the source held before (a reload): examined now, said once in service.
      if (held.fetched !== undefined) this.#mark(digest, secret, held.fetched)
    }
    const check = (): undefined => {
      if (held.publicSecrets.has(digest)) throw PUBLIC_SECRET
      return undefined
    }
    const first = async (): Promise<void> => {
      await this.#firstFetch()
      if (held.fetched === undefined) throw new KeysUnavailable('no key set could be fetched yet', held.waitMs())
      check()
    }
    return () => held.fetched === undefined ? first() : check()
  }

  /** Each fetch (whichever holder ran it): its secrets that are public, marked and said at error, the routes named, never the secret. */
  examine (parts: PublicParts): void {
    for (const [digest, { secret, routes }] of this.#secrets) {
      this.#mark(digest, secret, parts)
      const member = this.#held.publicSecrets.get(digest)
      if (member !== undefined && this.#inService) this.#log.error({ url: this.#held.jwks?.shown, routes, member }, PUBLIC_SECRET_ERROR)
    }
  }

  #mark (digest: string, secret: string, parts: PublicParts): void {
    const held = this.#held
    // parts is held.fetched: a secret is scanned once per set read, not at each fetch of the same body.
    if (held.publicSecrets.has(digest) || !held.unexamined(digest)) return
    const part = parts.of(secret)
    if (part === undefined) return
    held.publicSecrets.set(digest, `keys[${part.key}].${part.member}`)
    // Tokens cached as verified with it (a set before did not hold it) are verified again.
    held.generation++
  }

  inService (): void {
    this.#inService = true
    if (this.#held.fetched !== undefined) this.examine(this.#held.fetched)
  }

  outOfService (): void { this.#inService = false }

  dispose (): void {
    if (this.#disposed) return
    this.#disposed = true
    this.#held.leave(this)
  }

  /** Fetches the set now, unless a fetch of the source is in flight: the promise of that one. */
  refresh (trigger: string): Promise<void> {
    return this.#held.run(() => this.#fetch(trigger))
  }

  async #fetch (trigger: string): Promise<void> {
    const held = this.#held
    // The request a failure comes from, for the warning: a wrong issuer and a dead jwks_uri are fixed apart.
    let target = held.jwks ?? this.#discovery as Target
    try {
      held.jwks ??= await this.#discover()
      target = held.jwks
      const { body, digest, maxAgeMs } = await getJson(target, this.#o.timeoutMs)
      this.#install(body as JSONWebKeySet, digest, maxAgeMs)
      held.failures = 0
      this.#fetches.labels(trigger, 'ok').inc()
    } catch (err) {
      const kept = held.set !== undefined
      held.failures++
      this.#fetches.labels(trigger, 'error').inc()
      const step = target === this.#discovery ? 'discovery' : 'jwks'
      this.#log.warn({ err: (err as Error).message, trigger, kept, step, url: target.shown },
        `jwt-auth: key set fetch failed; ${kept ? 'the last good key set keeps serving' : 'no keys yet'}`)
      // The provider may have moved its keys (a new jwks_uri, the old one gone): the next attempt reads discovery again.
      if (this.#discovery !== undefined) held.jwks = undefined
    }
    held.scheduleNext()
  }

  /** Refresh before max-age runs out (90% of it), never more often than the cooldown allows. */
  refreshDelay (maxAgeMs: number | undefined): number {
    return Math.min(Math.max(maxAgeMs === undefined ? this.#o.refreshMs : maxAgeMs * 0.9, this.#o.cooldownMs), this.#o.maxRefreshMs)
  }

  /** The key set's URL, from the issuer's discovery document. */
  async #discover (): Promise<Target> {
    const issuer = (this.#o.source as { issuer: string }).issuer
    const { body } = await getJson(this.#discovery as Target, this.#o.timeoutMs)
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('discovery document is not a JSON object')
    const doc = body as { issuer?: unknown, jwks_uri?: unknown }
    // OIDC Discovery 4.3: the document must name the issuer it was fetched for.
    if (doc.issuer !== issuer) {
      const named = typeof doc.issuer === 'string' ? hideUrlSecrets(doc.issuer) : doc.issuer
      throw new Error(`discovery document names issuer ${quoted(named)}, not ${hideUrlSecrets(issuer)}`)
    }
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new Error('discovery document has no http(s) jwks_uri')
    const jwks = fetchTarget(doc.jwks_uri)
    // An https:// issuer's keys over plain http:// could be swapped on the way.
    if (issuer.startsWith('https://') && !doc.jwks_uri.startsWith('https://')) throw new Error(`discovery document names jwks_uri ${jwks.shown}: plain http:// for an https:// issuer is refused`)
    return jwks
  }

  /** Installs a fetched set; throws (the last good one stays) for one that is malformed or has no usable key (or none at all). */
  #install (jwks: JSONWebKeySet, digest: string, maxAgeMs: number | undefined): void {
    if (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys)) throw new Error('JSON Web Key Set malformed')
    const held = this.#held
    const all = jwks.keys as unknown[]
    // Every entry, usable or not, in a set installed or not: whatever it publishes is public.
    held.sawKeys(all, digest)
    const usable: JWK[] = []
    const skipped = new Map<string, { kid: unknown, problem: string }>()
    for (const k of all.length > MAX_KEYS ? all.slice(0, MAX_KEYS) : all) {
      // Encryption keys (use: enc, as Keycloak publishes) are not for signatures: left out quietly.
      if (typeof k === 'object' && k !== null && 'use' in k && k.use !== 'sig') continue
      const jwk = typeof k === 'object' && k !== null ? publicJwk(k as JWK) : 'not a JWK object'
      // A key jose would fail on at each token (malformed: 401) is the provider's fault: left out, said once.
      if (typeof jwk === 'string') skipped.set(JSON.stringify(k), { kid: (k as { kid?: unknown } | null)?.kid, problem: jwk })
      else usable.push(jwk)
    }
    this.#warnLeftOut(all.length, skipped)
    // An empty set too: a provider mid-rotation or misconfigured would otherwise refuse every token.
    if (usable.length === 0) {
      throw new Error(all.length === 0 ? 'the key set has no keys' : all.length > MAX_KEYS ? `none of the first ${MAX_KEYS} of the key set's ${all.length} keys is usable` : `none of the key set's ${all.length} keys is usable`)
    }
    const set = keySet(usable, false, () => {
      if (held.saidMissingKid) return
      held.saidMissingKid = true
      this.#log.warn({ url: held.jwks?.shown }, MISSING_KID_WARNING)
    })
    const keys = new Set(usable.map(k => JSON.stringify(k)))
    if ([...held.keys].some(k => !keys.has(k))) held.generation++
    Object.assign(held, { set, keys, maxAgeMs })
  }

  /**
   * One line per fetch at most for the keys left out that were not said before (a count, the first
   * few kids and reasons), and one for a set past MAX_KEYS. What was said is remembered whether or
   * not the set is then installed: a set refused as unusable, retried each cooldown, says it once.
   */
  #warnLeftOut (total: number, skipped: ReadonlyMap<string, { kid: unknown, problem: string }>): void {
    const held = this.#held
    const url = held.jwks?.shown
    if (total > MAX_KEYS && !held.saidTooMany) {
      this.#log.warn({ url, keys: total, read: MAX_KEYS }, `jwt-auth: the key set has more than ${MAX_KEYS} keys; only the first ${MAX_KEYS} are read`)
    }
    held.saidTooMany = total > MAX_KEYS
    const fresh = [...skipped].filter(([json]) => !held.skipped.has(json)).map(([, key]) => key)
    held.skipped = new Set(skipped.keys())
    if (fresh.length === 0) return
    this.#log.warn({ url, unusable: fresh.length, keys: fresh.slice(0, NAMED) }, 'jwt-auth: keys of the key set are unusable; left out')
  }
}
