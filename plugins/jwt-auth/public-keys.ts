import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import type { JSONWebKeySet, JWK } from 'jose'
import { readFilePath, type PluginConfigProblem } from '../../src/index.ts'
import { ASYMMETRIC } from './schema.ts'

type Alg = typeof ASYMMETRIC[number]

/** The algorithms a public key can verify. */
export function algorithmsOf (jwk: JWK): Alg[] {
  if (typeof jwk.alg === 'string') return (ASYMMETRIC as readonly string[]).includes(jwk.alg) ? [jwk.alg as Alg] : []
  if (jwk.kty === 'RSA') return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
  if (jwk.kty === 'EC') return jwk.crv === 'P-256' ? ['ES256'] : jwk.crv === 'P-384' ? ['ES384'] : jwk.crv === 'P-521' ? ['ES512'] : []
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return ['EdDSA', 'Ed25519']
  return []
}

/**
 * Keys without kid a token is checked with, in turn, at most (token-verifier.ts): each try is a
 * signature check, and 100 ES512 keys tried in turn made one junk token cost 110 ms of CPU.
 */
export const MAX_KEY_TRIES = 3

/** Whether `jwk` is tried in turn for a token whose kid picks no key: no kid, and a signing key (jose leaves out use: enc). */
export const triedInTurn = (jwk: JWK): boolean => jwk.kid === undefined && (jwk.use === undefined || jwk.use === 'sig')

const reason = (err: unknown): string => (err as Error).message

/** A key (configured, or in a remote key set) as a public JWK, or what is wrong with it. */
export function publicJwk (k: string | JWK): JWK | string {
  let jwk: JWK
  let key: KeyObject
  if (typeof k === 'string') {
    if (k.includes('PRIVATE KEY')) return 'a private key; give the public key or certificate'
    try { key = createPublicKey(k); jwk = key.export({ format: 'jwk' }) as JWK } catch (err) { return `not a PEM public key or certificate: ${reason(err)}` }
  } else {
    if ('d' in k || k.kty === 'oct') return 'a private or symmetric JWK; give the public key (use secret for HMAC)'
    try { key = createPublicKey({ key: k, format: 'jwk' }) } catch (err) { return `not a usable public JWK: ${reason(err)}` }
    jwk = k
  }
  // jose verifies no RS* or PS* signature with a shorter key: each token would fail as malformed.
  const bits = key.asymmetricKeyDetails?.modulusLength
  if (bits !== undefined && bits < 2048) return `an RSA key of ${bits} bits; signatures need 2048 bits or more`
  if (algorithmsOf(jwk).length > 0) return jwk
  return `verifies no JWT signature algorithm (kty ${String(jwk.kty)}${jwk.crv === undefined ? '' : `, crv ${jwk.crv}`}${jwk.alg === undefined ? '' : `, alg ${jwk.alg}`})`
}

// Key material where a shared secret (or jwksFile's path) was expected: found at load.
const GIVE_KEYS = 'HMAC needs a shared secret; give public keys under keys or jwksUri'
const anyoneMayHold = (what: string): string => `${what}, which anyone may hold: ${GIVE_KEYS}`
const PRIVATE = `a private key: ${GIVE_KEYS}`
const PUBLIC = anyoneMayHold('a public key')
const SSH_PUBLIC = anyoneMayHold('an SSH public key')

/** Key material pasted without its PEM armour (a PEM body, a JWK's x5c): tried as DER, in base64 or hex. */
const DER_KINDS: Array<[string, (der: Buffer) => unknown]> = [
  [PRIVATE, der => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })],
  [PRIVATE, der => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' })],
  [PRIVATE, der => createPrivateKey({ key: der, format: 'der', type: 'sec1' })],
  [PUBLIC, der => createPublicKey({ key: der, format: 'der', type: 'spki' })],
  [PUBLIC, der => createPublicKey({ key: der, format: 'der', type: 'pkcs1' })],
  [anyoneMayHold('a certificate'), der => new X509Certificate(der)]
]

const parsesAs = (parse: () => unknown): boolean => {
  try {
    parse()
    return true
  } catch {
    return false
  }
}

const jsonOf = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isJwk = (v: unknown): v is Record<string, unknown> => isObject(v) && Object.hasOwn(v, 'kty')
/** A JWK holding a secret part: d (private) or k (symmetric). */
const holdsSecret = (jwk: unknown): boolean => isObject(jwk) && (Object.hasOwn(jwk, 'd') || Object.hasOwn(jwk, 'k'))

/** The JWKs of a JWK set, or of a bare array of them (own members only: [] has a keys method). */
const setOf = (json: unknown): unknown[] | undefined => {
  const set = isObject(json) && Object.hasOwn(json, 'keys') ? json.keys : json
  return Array.isArray(set) && set.some(isJwk) ? set : undefined
}

// An OpenSSH key type (ssh-ed25519, ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com, ssh-rsa-cert-v01@openssh.com).
const SSH_TYPE = '(sk-)?(ssh|ecdsa-sha2)-[a-z0-9-]+(@openssh\\.com)?'
// Its public key line (after authorized_keys options or a known_hosts name too), and its binary blob's start.
const SSH_LINE = new RegExp(`(^|\\s)${SSH_TYPE}\\s+AAAA`)
const SSH_BLOB_TYPE = new RegExp(`^${SSH_TYPE}$`)
const OPENSSH_PRIVATE = Buffer.from('openssh-key-v1\0')

/** What binary key material (DER, an SSH key blob) `bytes` is, if any. */
function binaryKind (bytes: Buffer): string | undefined {
  if (bytes.subarray(0, OPENSSH_PRIVATE.length).equals(OPENSSH_PRIVATE)) return PRIVATE
  if (bytes.length > 4 && SSH_BLOB_TYPE.test(bytes.subarray(4, 4 + bytes.readUInt32BE(0)).toString('latin1'))) return SSH_PUBLIC
  return DER_KINDS.find(([, parse]) => parsesAs(() => parse(bytes)))?.[0]
}

/** The bytes `text` may encode: hex (openssl's colon-separated too), base64 or base64url. */
function decodings (text: string): Buffer[] {
  const compact = text.replace(/\s+/g, '')
  const hex = compact.replace(/:/g, '')
  return [
    ...(/^([0-9a-f]{2})+$/i.test(hex) ? [Buffer.from(hex, 'hex')] : []),
    ...(/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact) ? [Buffer.from(compact, 'base64')] : [])
  ]
}

/**
 * What is wrong with a secret that is key material rather than a shared secret (never quoting it):
 * HMAC keyed with a public key or certificate lets anyone holding it forge tokens, and a private
 * key there is a mix-up (its tokens are signed RS256, ES256...). Text wrapped once more (a JSON
 * string, the base64 of a PEM file as in a Kubernetes Secret) is looked into once.
 */
export function keyMaterialProblem (secret: string, wrapped = false): string | undefined {
  const text = secret.trim()
  const pem = /-----BEGIN ([^\r\n]*?)-----/.exec(text)?.[1]
  if (pem !== undefined) {
    if (pem.includes('PRIVATE KEY')) return PRIVATE
    if (pem.includes('CERTIFICATE')) return anyoneMayHold('a certificate')
    if (pem.includes('PUBLIC KEY')) return PUBLIC
  }
  if (text.includes('-----BEGIN')) return `holds -----BEGIN, the start of PEM text: ${GIVE_KEYS}`
  // RFC 4716 (SSH2 public key file), four dashes and a space.
  const ssh2 = /---- BEGIN ([^\r\n]*?) ----/.exec(text)?.[1]
  if (ssh2 !== undefined) return ssh2.includes('PRIVATE') ? PRIVATE : SSH_PUBLIC
  if (SSH_LINE.test(text)) return SSH_PUBLIC
  const json = jsonOf(text)
  if (isJwk(json)) return holdsSecret(json) ? `a private or symmetric JWK: ${GIVE_KEYS}` : anyoneMayHold('a public key (JWK)')
  const set = setOf(json)
  if (set !== undefined) return set.some(holdsSecret) ? `a JWK set with private or symmetric keys: ${GIVE_KEYS}` : anyoneMayHold('a JWK set')
  if (wrapped) return decodings(text).map(binaryKind).find(kind => kind !== undefined)
  if (typeof json === 'string') return keyMaterialProblem(json, true)
  for (const bytes of decodings(text)) {
    const kind = binaryKind(bytes)
    if (kind !== undefined) return kind
    const inner = bytes.toString('utf8')
    if (/^[\x20-\x7e\t\r\n]+$/.test(inner)) return keyMaterialProblem(inner, true)
  }
  return undefined
}

/** A member of a key of a set, where a secret was found to hold it: the key's index and the member's name (`n`, `x5c[0]`). */
export interface PublicPart { readonly key: number, readonly member: string }

/**
 * The fewest bytes a member is looked for with (leading zero bytes left out): shorter ones (e, crv,
 * kty) would turn up by chance in a random secret. A member's text of fewer characters gives fewer.
 */
const MEMBER_MIN = 16
const TEXT_MIN = 32
/** Characters of base64 that give MEMBER_MIN bytes: shorter strings are passed over undecoded (a 1 MB set of 200,000 tiny strings, each decoded, took 0.4 s). */
const ENCODED_MIN = Math.ceil(MEMBER_MIN * 4 / 3)

const withoutLeadingZeros = (bytes: Buffer): Buffer => {
  let i = 0
  while (i < bytes.length && bytes[i] === 0) i++
  return bytes.subarray(i)
}

/**
 * Members whose value is key material (or its hash): a secret holding one anywhere is public. A
 * published k or d is public too. Other members (kid, x5u, issuer...) are names and links a
 * secret may fairly embed (`<kid>.<random>`): public only when the secret is one of them.
 */
const MATERIAL = new Set(['n', 'x', 'y', 'x5c', 'k', 'd', 'x5t', 'x5t#S256'])

/**
 * The members of a key set's keys, as the bytes a secret holding them would hold: key material
 * (MATERIAL; each x5c entry) as written and as the bytes it encodes (base64, base64url, hex; an EC
 * point, 04||x||y, holds x), and each key's RFC 7638 thumbprint, indexed by their first MEMBER_MIN
 * bytes, built once per set: a secret is then a lookup per position of its own bytes, not a walk of
 * the set. Any other string member is looked for whole, in the same spellings. Entries that are
 * not objects are passed over.
 */
export class PublicParts {
  readonly #byStart = new Map<string, Array<{ bytes: Buffer, part: PublicPart }>>()
  /** The other members, by their bytes (latin1), in each spelling. */
  readonly #whole = new Map<string, PublicPart>()

  constructor (jwks: readonly unknown[]) {
    for (const [key, jwk] of jwks.entries()) {
      if (!isObject(jwk)) continue
      for (const [name, value] of Object.entries(jwk)) {
        for (const [i, text] of (Array.isArray(value) ? value : [value]).entries()) {
          if (typeof text !== 'string' || text.length < ENCODED_MIN) continue
          const part = { key, member: Array.isArray(value) ? `${name}[${i}]` : name }
          if (!MATERIAL.has(name)) {
            for (const bytes of [Buffer.from(text, 'utf8'), ...decodings(text)]) this.#whole.set(bytes.toString('latin1'), part)
            continue
          }
          if (text.length >= TEXT_MIN) this.#add(Buffer.from(text, 'utf8'), part)
          for (const bytes of decodings(text)) this.#add(withoutLeadingZeros(bytes), part)
        }
      }
      const thumbprint = thumbprintOf(jwk)
      if (thumbprint !== undefined) this.#add(thumbprint, { key, member: 'thumbprint' })
    }
  }

  #add (bytes: Buffer, part: PublicPart): void {
    if (bytes.length < MEMBER_MIN) return
    const start = bytes.toString('latin1', 0, MEMBER_MIN)
    const same = this.#byStart.get(start)
    if (same === undefined) this.#byStart.set(start, [{ bytes, part }])
    else same.push({ bytes, part })
  }

  /** The member `secret` is, or holds (key material), in any spelling secretBytes reads: public, so anyone could forge HS256 tokens with it. */
  of (secret: string): PublicPart | undefined {
    const text = secret.trim()
    for (const bytes of [Buffer.from(text, 'utf8'), ...decodings(text)]) {
      const found = this.#whole.get(bytes.toString('latin1'))
      if (found !== undefined) return found
    }
    if (this.#byStart.size === 0) return undefined
    for (const bytes of secretBytes(secret)) {
      for (let i = 0; i + MEMBER_MIN <= bytes.length; i++) {
        const found = this.#byStart.get(bytes.toString('latin1', i, i + MEMBER_MIN))?.find(m => bytes.subarray(i, i + m.bytes.length).equals(m.bytes))
        if (found !== undefined) return found.part
      }
    }
    return undefined
  }
}

/** RFC 7638 members of a public key by kty (jose's calculateJwkThumbprint is async: this runs where a config is checked). */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] }

/** A key's RFC 7638 SHA-256 thumbprint, published as its kid by many providers, when its members are there (n or x long enough to be a key: a junk entry costs no hash). */
function thumbprintOf (jwk: Record<string, unknown>): Buffer | undefined {
  const members = THUMBPRINT_MEMBERS[String(jwk.kty)]
  const main = jwk.kty === 'RSA' ? jwk.n : jwk.x
  if (members === undefined || typeof main !== 'string' || main.length < ENCODED_MIN || members.some(m => typeof jwk[m] !== 'string')) return undefined
  return createHash('sha256').update(JSON.stringify(Object.fromEntries(members.map(m => [m, jwk[m]])))).digest()
}

/**
 * The bytes a secret may spell a member in: its text, each run of hex digits in it (colons and white
 * space left out, as openssl prints them over lines; a prefix such as `0x` or `Modulus=` ends
 * before it) at both alignments, each run of base64 or base64url (white space left out) at its four
 * alignments (a prefix glued to it), and once more within what decodes to text (the base64 of a
 * member's text, as a Kubernetes Secret wraps it).
 */
function secretBytes (secret: string, wrapped = false): Buffer[] {
  const text = secret.trim()
  const all = [Buffer.from(text, 'utf8')]
  for (const [run] of text.replace(/[:\s]+/g, '').matchAll(/[0-9a-f]{32,}/gi)) all.push(Buffer.from(run, 'hex'), Buffer.from(run.slice(1), 'hex'))
  for (const [run] of text.replace(/\s+/g, '').matchAll(/[A-Za-z0-9+/_-]{22,}/g)) {
    for (let i = 0; i < 4; i++) all.push(Buffer.from(run.slice(i), 'base64'))
  }
  if (wrapped) return all
  return [...all, ...all.slice(1).filter(b => /^[\x20-\x7e\t\r\n]+$/.test(b.toString('latin1'))).flatMap(b => secretBytes(b.toString('latin1'), true))]
}

/** A secret that is, or holds, a member of one of the config's own public keys (PublicParts). */
export function publicPartProblem (secret: string, jwks: readonly JWK[]): string | undefined {
  const part = new PublicParts(jwks).of(secret)
  return part === undefined ? undefined : anyoneMayHold(`${part.member} of a public key this config gives`)
}

/** The length a DER structure starting `bytes` declares (its header's too), if it starts as a SEQUENCE of an INTEGER or a SEQUENCE, as every key and certificate does. */
function derLength (bytes: Buffer): number | undefined {
  const first = bytes[1]
  if (bytes[0] !== 0x30 || first === undefined) return undefined
  // Short form, or long form in 1 to 3 octets (0x80, indefinite, is no DER).
  const octets = first < 0x80 ? 0 : first - 0x80
  if (first === 0x80 || octets > 3 || bytes.length < 3 + octets) return undefined
  const header = 2 + octets
  const inner = bytes[header]
  if (inner !== 0x02 && inner !== 0x30) return undefined
  return header + (octets === 0 ? first : bytes.readUIntBE(2, octets))
}

/**
 * Whether `text` is base64 key text that path resolution changed (path.resolve folds `//` into `/`
 * and drops a last `/`): exact checks then fail, but its bytes are the key's up to the first fold:
 * a DER key or certificate whose declared length the rest fits (each fold loses 6 bits; up to an
 * eighth lost, far more than any key's `//` would). SSH keys' blobs are known by their start
 * already (keyMaterialProblem); the base64 of text (PEM, JSON) has no `//` nor a last `/`.
 */
function foldedKeyText (text: string): boolean {
  const compact = text.replace(/\s+/g, '')
  if (compact.length < 64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return false
  const bytes = Buffer.from(compact, 'base64')
  const declared = derLength(bytes)
  return declared !== undefined && bytes.length <= declared + 1 && bytes.length >= declared * 7 / 8
}

/**
 * What a jwksFile holds instead of a path, if it is key text (a ${VAR} holding it): said so, never
 * quoted (JWKS text was, three times, and a PEM private key, and a base64 body with `//` made a path). JSON is an object's start or its "keys" member.
 */
function textForPath (jwksFile: string): string | undefined {
  if (/\{\s*"|"keys"/.test(jwksFile)) return 'JWKS text'
  if (/-----BEGIN |---- BEGIN /.test(jwksFile)) return 'PEM text'
  // A relative path comes resolved against the config file's folder: the key text follows one of its slashes.
  const starts = [0, ...[...jwksFile.matchAll(/\//g)].map(m => m.index + 1)]
  return starts.some(i => keyMaterialProblem(jwksFile.slice(i)) !== undefined || foldedKeyText(jwksFile.slice(i))) ? 'key material' : undefined
}

/**
 * The static keys of a jwt-auth config (keys, then jwksFile's) as public JWKs, and what is wrong
 * with any of them at its key: read at load by the config check and again by setup, so that a
 * bad key is a config error at its line, found by `portcullis validate` too.
 */
export function readPublicKeys (keys: ReadonlyArray<string | JWK>, jwksFile: string | undefined): { jwks: JWK[], problems: PluginConfigProblem[] } {
  const jwks: JWK[] = []
  const problems: PluginConfigProblem[] = []
  const add = (k: string | JWK, path: PluginConfigProblem['path'], prefix = '') => {
    const jwk = publicJwk(k)
    if (typeof jwk === 'string') problems.push({ path, message: prefix + jwk })
    else jwks.push(jwk)
  }
  keys.forEach((k, i) => add(k, ['keys', i]))
  const text = jwksFile === undefined ? undefined : textForPath(jwksFile)
  if (text !== undefined) {
    problems.push({ path: ['jwksFile'], message: `holds ${text}, not a file path: write the key set to a file and give that file's path${text === 'JWKS text' ? '' : ', or a PEM public key under keys'}` })
  } else if (jwksFile !== undefined) {
    let set: JSONWebKeySet
    try {
      set = JSON.parse(readFilePath(jwksFile).toString('utf8')) as JSONWebKeySet
    } catch (err) {
      problems.push({ path: ['jwksFile'], message: `${jwksFile}: ${reason(err)}` })
      return { jwks, problems }
    }
    if (!Array.isArray(set?.keys)) problems.push({ path: ['jwksFile'], message: `${jwksFile}: not a JSON Web Key Set ({ "keys": [...] })` })
    else set.keys.forEach((k, i) => add(k, ['jwksFile'], `${jwksFile} keys[${i}]: `))
  }
  return { jwks, problems }
}
