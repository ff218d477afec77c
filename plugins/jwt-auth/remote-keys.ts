import { createLocalJWKSet, type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose'
import type { Logger } from 'pino'
import { request } from 'undici'
import type { PluginMetrics } from '../../src/index.ts'

/** The least time between two background refreshes, whatever `jwks.cooldown` says. */
const REFRESH_FLOOR_MS = 1_000

export interface RemoteKeyOptions {
  /** The OIDC issuer whose discovery document names the JWKS, or the JWKS URL itself. */
  readonly source: { issuer: string } | { jwksUri: string }
  readonly timeoutMs: number
  readonly cooldownMs: number
  readonly refreshMs: number
  readonly maxRefreshMs: number
}

const MAX_BODY = 1 << 20

/** Thrown when no key set has ever been fetched (the provider was down from the start): 503, not 401. */
export class KeysUnavailable extends Error { readonly code = 'ERR_KEYS_UNAVAILABLE' }

type LocalSet = ReturnType<typeof createLocalJWKSet>

async function getJson (url: string, timeoutMs: number): Promise<{ body: unknown, maxAgeMs: number | undefined }> {
  const res = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) { res.body.destroy(); throw new Error(`${url}: response larger than ${MAX_BODY} bytes`) }
    chunks.push(chunk)
  }
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`)
  const cacheControl = String(res.headers['cache-control'] ?? '')
  const maxAge = /(?:^|[,\s])max-age=(\d+)/i.exec(cacheControl)?.[1]
  const noCache = /no-cache|no-store/i.test(cacheControl)
  return { body: JSON.parse(Buffer.concat(chunks).toString('utf8')), maxAgeMs: noCache ? 0 : maxAge === undefined ? undefined : Number(maxAge) * 1000 }
}

/**
 * A provider's key set: fetched at setup (not awaited), refreshed in the background before its
 * Cache-Control max-age runs out, refetched for an unknown kid at most once per cooldown. When a
 * fetch fails the last good set keeps serving. Shared by every route of a config that names the same source.
 */
export class RemoteKeys {
  readonly #o: RemoteKeyOptions
  readonly #log: Logger
  readonly #fetches: ReturnType<PluginMetrics['counter']>
  #jwksUri: string | undefined
  #set: LocalSet | undefined
  #kids = new Set<string>()
  /** Bumped when a key disappears from the set: tokens verified with older sets must be verified again. */
  #generation = 0
  #lastAttempt = -Infinity
  #inflight: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #disposed = false

  constructor (options: RemoteKeyOptions, log: Logger, metrics: PluginMetrics) {
    this.#o = options
    this.#log = log
    this.#jwksUri = 'jwksUri' in options.source ? options.source.jwksUri : undefined
    this.#fetches = metrics.counter({
      name: 'portcullis_jwt_jwks_fetches_total',
      help: 'Key set fetches (OIDC discovery included) by why they ran and how they ended.',
      labelNames: ['trigger', 'result']
    })
  }

  get generation (): number { return this.#generation }

  start (): void { void this.#refresh('initial') }

  /** The jose key function: the key for a token's header. */
  readonly key = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (this.#set === undefined) {
      if (this.#inflight === undefined && this.#mayFetch()) void this.#refresh('initial')
      await this.#inflight
      if (this.#set === undefined) throw new KeysUnavailable('no key set could be fetched yet')
    }
    try {
      return await (this.#set as LocalSet)(header, token) as CryptoKey
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err
      // An unknown kid: perhaps a new key (rotation). Junk tokens cannot make this run more than once per cooldown.
      if (this.#inflight === undefined) {
        if (!this.#mayFetch()) throw err
        void this.#refresh('unknown_kid')
      }
      await this.#inflight
      return await (this.#set as LocalSet)(header, token) as CryptoKey
    }
  }

  dispose (): void {
    this.#disposed = true
    clearTimeout(this.#timer)
  }

  #mayFetch (): boolean { return performance.now() - this.#lastAttempt >= this.#o.cooldownMs }

  #refresh (trigger: string): Promise<void> {
    this.#inflight ??= this.#fetch(trigger).finally(() => { this.#inflight = undefined })
    return this.#inflight
  }

  async #fetch (trigger: string): Promise<void> {
    this.#lastAttempt = performance.now()
    clearTimeout(this.#timer)
    let next: number
    try {
      const { keys, maxAgeMs } = await this.#download()
      this.#install(keys)
      this.#fetches.labels(trigger, 'ok').inc()
      // Refresh before max-age runs out (90% of it), never more often than the cooldown allows.
      next = Math.min(Math.max(maxAgeMs === undefined ? this.#o.refreshMs : maxAgeMs * 0.9, this.#o.cooldownMs), this.#o.maxRefreshMs)
    } catch (err) {
      this.#fetches.labels(trigger, 'error').inc()
      this.#log.warn({ err: (err as Error).message, trigger, kept: this.#set !== undefined },
        `jwt-auth: key set fetch failed; ${this.#set === undefined ? 'no keys yet' : 'the last good key set keeps serving'}`)
      next = this.#o.cooldownMs
    }
    // However short the cooldown (0 in tests), the background refresh does not poll a provider in a loop.
    if (!this.#disposed) this.#timer = setTimeout(() => { void this.#refresh('refresh') }, Math.max(next, REFRESH_FLOOR_MS)).unref()
  }

  async #download (): Promise<{ keys: JSONWebKeySet, maxAgeMs: number | undefined }> {
    if (this.#jwksUri === undefined) {
      const issuer = (this.#o.source as { issuer: string }).issuer
      const { body } = await getJson(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, this.#o.timeoutMs)
      const doc = body as { issuer?: unknown, jwks_uri?: unknown }
      // OIDC Discovery 4.3: the document must name the issuer it was fetched for.
      if (doc.issuer !== issuer) throw new Error(`discovery document names issuer ${JSON.stringify(doc.issuer)}, not ${issuer}`)
      if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new Error('discovery document has no http(s) jwks_uri')
      this.#jwksUri = doc.jwks_uri
    }
    const { body, maxAgeMs } = await getJson(this.#jwksUri, this.#o.timeoutMs)
    return { keys: body as JSONWebKeySet, maxAgeMs }
  }

  #install (keys: JSONWebKeySet): void {
    const set = createLocalJWKSet(keys) // throws on a malformed set: the last good one stays
    const kids = new Set(keys.keys.map(k => JSON.stringify(k)))
    if ([...this.#kids].some(k => !kids.has(k))) this.#generation++
    this.#kids = kids
    this.#set = set
  }
}
