import { createSign, randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import { startUpstream, type TestUpstream } from './upstream.ts'

export type Alg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519'

export interface SigningKey {
  readonly kid: string
  readonly alg: Alg
  readonly privateKey: CryptoKey
  readonly jwk: JWK
  /** The public key as PEM (SPKI). */
  readonly pem: string
}

export async function signingKey (alg: Alg, kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...await exportJWK(publicKey), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, jwk, pem: await exportSPKI(publicKey) }
}

/** A real token, signed by `key`, with iat and (unless given) exp in an hour. */
export function mint (key: SigningKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ iat: now, exp: now + 3600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...header })
    .sign(key.privateKey)
}

export const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A token signed by hand (headers jose would refuse to produce: crit, jku...), RS256 with a Node private key. */
export function signByHand (header: Record<string, unknown>, payload: Record<string, unknown>, privatePem: string): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privatePem).toString('base64url')}`
}

export interface PathState {
  /** Requests seen (each fetch counts, failed ones too). */
  fetches: number
  /** Served with this Cache-Control header, if any. */
  cacheControl?: string
  /** When true, answers 503. */
  down: boolean
  keys: JWK[]
}

/**
 * A local identity provider: an OIDC discovery document at /.well-known/openid-configuration
 * naming /jwks, and key sets on any path registered with `serve` (each with its own fetch count).
 */
export class IdentityProvider {
  readonly paths = new Map<string, PathState>()
  discoveryFetches = 0
  #server: TestUpstream | undefined

  static async start (): Promise<IdentityProvider> {
    const idp = new IdentityProvider()
    idp.#server = await startUpstream((req, res) => idp.#handle(req, res))
    return idp
  }

  #handle (req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/.well-known/openid-configuration') {
      this.discoveryFetches++
      const body = JSON.stringify({ issuer: this.url, jwks_uri: `${this.url}/jwks`, id_token_signing_alg_values_supported: ['RS256'] })
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    const state = this.paths.get(req.url ?? '')
    if (state === undefined) { res.writeHead(404).end(); return }
    state.fetches++
    if (state.down) { res.writeHead(503).end('down'); return }
    res.writeHead(200, { 'content-type': 'application/json', ...(state.cacheControl === undefined ? {} : { 'cache-control': state.cacheControl }) })
    res.end(JSON.stringify({ keys: state.keys }))
  }

  get url (): string { return (this.#server as TestUpstream).url }

  /** Serves `keys` (their public JWKs) at `path`. */
  serve (path: string, keys: readonly SigningKey[], cacheControl?: string): PathState {
    const state: PathState = { fetches: 0, down: false, keys: keys.map(k => k.jwk), ...(cacheControl === undefined ? {} : { cacheControl }) }
    this.paths.set(path, state)
    return state
  }

  close (): Promise<void> { return (this.#server as TestUpstream).close() }
}
