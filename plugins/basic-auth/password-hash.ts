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

export interface PasswordHash { readonly params: ScryptParams, readonly salt: Buffer, readonly hash: Buffer }

// scrypt needs 128 * N * r bytes (and a little more): allow twice that.
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
  const [ln, r, p] = [m[1], m[2], m[3]].map(Number) as [number, number, number]
  return { params: { ln, r, p }, salt: Buffer.from(m[4] as string, 'base64'), hash: Buffer.from(m[5] as string, 'base64') }
}

/** Derives and compares in constant time. */
export async function checkPassword (password: string, stored: PasswordHash): Promise<boolean> {
  const derived = await derive(password, stored.salt, stored.params, stored.hash.length)
  return timingSafeEqual(derived, stored.hash)
}
