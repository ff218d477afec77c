import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

/** scrypt cost: N = 2^ln, block size r, parallelism p. */
export interface ScryptParams { readonly ln: number, readonly r: number, readonly p: number }

// Checked on every request: 2^14 (16 MiB, some tens of ms) keeps a login-grade cost without making auth the bottleneck.
export const DEFAULT_PARAMS: ScryptParams = { ln: 14, r: 8, p: 1 }
const KEY_BYTES = 32
const SALT_BYTES = 16

/**
 * `$scrypt$ln=14,r=8,p=1$<salt>$<hash>`, salt and hash in unpadded base64 (the PHC string format).
 * ln 10-20, r 1-32, p 1-16: 0 would be Node's default in disguise, more a cost paid on every check.
 */
const PHC = /^\$scrypt\$ln=(1\d|20),r=([1-9]|[12]\d|3[0-2]),p=([1-9]|1[0-6])\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{32,})$/
export const PHC_PATTERN = PHC.source
/**
 * N below 2^(16·r) (RFC 7914 2): in that range, only ln 16 and up with r=1 breaks it. OpenSSL refuses
 * those parameters at each derivation (ERR_CRYPTO_INVALID_SCRYPT_PARAMS): no check could ever run.
 */
const N_FITS = /^(?!\$scrypt\$ln=(?:1[6-9]|20),r=1,)/
export const N_FITS_PATTERN = N_FITS.source

export interface PasswordHash { readonly params: ScryptParams, readonly salt: Buffer, readonly hash: Buffer }

// scrypt needs 128·r·(N + 2 + p) bytes (OpenSSL's check): twice 128·N·r covers it for any N ≥ 1024, p ≤ 16.
const maxmem = (p: ScryptParams) => 256 * 2 ** p.ln * p.r

function derive (password: string | Buffer, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, { N: 2 ** params.ln, r: params.r, p: params.p, maxmem: maxmem(params) }, (err, key) => err === null ? resolve(key) : reject(err))
  })
}

export async function hashPassword (password: string, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const hash = await derive(password, salt, params, KEY_BYTES)
  const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '')
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`
}

export function parseHash (phc: string): PasswordHash {
  const m = PHC.exec(phc)
  if (m === null) throw new Error('not a $scrypt$ PHC string')
  if (!N_FITS.test(phc)) throw new Error('scrypt needs N = 2^ln below 2^(16·r): ln 16 and up need r 2 or more')
  const [ln, r, p] = [m[1], m[2], m[3]].map(Number) as [number, number, number]
  return { params: { ln, r, p }, salt: Buffer.from(m[4] as string, 'base64'), hash: Buffer.from(m[5] as string, 'base64') }
}

/** Derives and compares in constant time. */
export async function checkPassword (password: string, stored: PasswordHash): Promise<boolean> {
  const derived = await derive(password, stored.salt, stored.params, stored.hash.length)
  return timingSafeEqual(derived, stored.hash)
}
