import type { EventEmitter } from 'node:events'
import { resolve } from 'node:path'
import { createHash, X509Certificate } from 'node:crypto'
import { createSecureContext, type SecureContext, type SecureVersion, type TLSSocket, type TlsOptions } from 'node:tls'
import type { GatewayConfig } from '../config/schema.ts'
import { readFilePath } from '../config/file-path.ts'
import { caFileProblem, unreadableFile } from '../upstreams/tls.ts'

type TlsConfig = NonNullable<GatewayConfig['server']['tls']>
type Report = (path: Array<string | number>, message: string) => void
interface Stapled { readonly der: Buffer, readonly response: Buffer }
/** A certificate's validity period (ms since the epoch), by its DER. */
interface Validity { readonly der: Buffer, readonly notBefore: number, readonly notAfter: number }

/**
 * The TLS 1.2 suites of Mozilla's "intermediate" profile: forward secrecy and AEAD only (Node's own
 * default also takes CBC and RSA key exchange, through HIGH). Its DHE suites are left out: no DH
 * parameters are set. TLS 1.3 keeps Node's suites, all AEAD.
 */
const DEFAULT_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'
/** OpenSSL's default groups: they follow the Node version (OpenSSL 3.5 in Node 24 puts X25519MLKEM768 first). */
const DEFAULT_CURVES = 'auto'

/**
 * The listener's certificates, read and checked at config load: the first is the default, the
 * others are chosen by the name the client asks for (SNI), exactly or by wildcard. A reload builds
 * a new one; the listener reads the current one at every handshake, so open connections keep theirs.
 */
export class ServerTls {
  /** Options of the listener itself (the default certificate, for clients that send no name). */
  readonly options: TlsOptions
  readonly #exact = new Map<string, SecureContext>()
  readonly #wildcard = new Map<string, SecureContext>()
  readonly #default: SecureContext
  /** Each certificate (DER) with its OCSP response, for those that have one. */
  readonly #ocsp: Stapled[]
  /** Each certificate's validity, in config order. */
  readonly #validity: Validity[]
  /** Every file read, absolute: a change to one is a reason to reload. */
  readonly files: readonly string[]
  /** Digest of the files' content as read (see changedOnDisk). */
  readonly #digest: string

  private constructor (options: TlsOptions, contexts: Array<{ names: string[], context: SecureContext }>, ocsp: Stapled[], validity: Validity[], files: string[], contents: Buffer[]) {
    this.options = options
    this.#ocsp = ocsp
    this.#validity = validity
    this.files = files
    this.#digest = digest(contents)
    this.#default = (contexts[0] as { context: SecureContext }).context
    // Earlier certificates win a name two of them carry.
    for (const { names, context } of contexts) {
      for (const n of names) {
        const map = n.startsWith('*.') ? this.#wildcard : this.#exact
        const key = n.startsWith('*.') ? n.slice(2) : n
        if (!map.has(key)) map.set(key, context)
      }
    }
  }

  /** The context for SNI `name` (one trailing dot left out, as routing does): exact, then `*.` one label up, then the default. */
  select (name: string): SecureContext {
    const host = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase()
    const exact = this.#exact.get(host)
    if (exact !== undefined) return exact
    const dot = host.indexOf('.')
    return (dot === -1 ? undefined : this.#wildcard.get(host.slice(dot + 1))) ?? this.#default
  }

  /** The OCSP response to staple for the certificate `der` the handshake uses; undefined when it has none. */
  ocspResponse (der: Buffer): Buffer | undefined {
    for (const o of this.#ocsp) if (o.der.equals(der)) return o.response
    return undefined
  }

  /** Whether a file differs from what was read (or cannot be read now). */
  changedOnDisk (): boolean {
    try {
      return digest(this.files.map(f => readFilePath(f))) !== this.#digest
    } catch {
      return true
    }
  }

  /** The certificates outside their validity period at `now`: their index in server.tls.certificates, and why. */
  outOfDate (now = Date.now()): Array<{ index: number, expired: boolean, why: string }> {
    return this.#validity.flatMap<{ index: number, expired: boolean, why: string }>(({ notBefore, notAfter }, index) => now > notAfter
      ? [{ index, expired: true, why: `expired on ${new Date(notAfter).toISOString()}` }]
      : now < notBefore ? [{ index, expired: false, why: `not valid before ${new Date(notBefore).toISOString()}` }] : [])
  }

  /**
   * The certificates a reload from `active` must not put in service: expired ones it does not serve
   * already (a renewal gone wrong, which would replace a working certificate). One it serves is left
   * to the warnings, so as not to hold back every other change; one not yet valid too (a clock a little
   * behind the issuer's must not keep an old certificate serving until it expires).
   */
  expiredRenewals (active: ServerTls | undefined, now = Date.now()): Array<{ index: number, why: string }> {
    const served = active === undefined ? [] : active.#validity
    return this.outOfDate(now).filter(c => c.expired && !served.some(v => v.der.equals((this.#validity[c.index] as Validity).der)))
  }

  /** Reads and checks `tls`'s files (relative to `base`); problems go to `report` at their key, and then the result is undefined. */
  static load (tls: TlsConfig, base: string, report: Report): ServerTls | undefined {
    const files: string[] = []
    const contents: Buffer[] = []
    const read = (path: Array<string | number>, file: string): Buffer | undefined => {
      const abs = resolve(base, file)
      files.push(abs)
      try {
        const content = readFilePath(abs)
        contents.push(content)
        return content
      } catch (err) {
        report(path, unreadableFile(path.filter(k => typeof k === 'string'), file, abs, err as Error))
        return undefined
      }
    }
    const at = (...rest: Array<string | number>) => ['server', 'tls', ...rest]
    const clientCa = tls.clientAuth === undefined ? undefined : read(at('clientAuth', 'ca'), tls.clientAuth.ca)
    const caProblem = clientCa === undefined ? undefined : caFileProblem(clientCa.toString())
    if (caProblem !== undefined) report(at('clientAuth', 'ca'), caProblem)
    const settings = {
      minVersion: (tls.minVersion ?? 'TLSv1.2') as SecureVersion,
      ciphers: tls.ciphers ?? DEFAULT_CIPHERS,
      ecdhCurve: tls.curves ?? DEFAULT_CURVES
    }
    const cipherProblem = listProblem('cipher', 'ciphers', settings.ciphers)
    const curveProblem = listProblem('curve', 'ecdhCurve', settings.ecdhCurve)
    if (cipherProblem !== undefined) report(at('ciphers'), cipherProblem)
    if (curveProblem !== undefined) report(at('curves'), curveProblem)
    const contexts: Array<{ names: string[], context: SecureContext, cert: Buffer, key: Buffer }> = []
    const ocsp: Stapled[] = []
    const validity: Validity[] = []
    const listsOk = cipherProblem === undefined && curveProblem === undefined
    let ok = (clientCa !== undefined || tls.clientAuth === undefined) && caProblem === undefined && listsOk
    tls.certificates.forEach((c, i) => {
      const cert = read(at('certificates', i, 'cert'), c.cert)
      const key = read(at('certificates', i, 'key'), c.key)
      const response = c.ocsp === undefined ? undefined : read(at('certificates', i, 'ocsp'), c.ocsp)
      if (cert === undefined || key === undefined || (c.ocsp !== undefined && response === undefined)) { ok = false; return }
      // An OCSP response is a DER SEQUENCE; a PEM or empty file would be stapled as garbage.
      if (response !== undefined && response[0] !== 0x30) { ok = false; report(at('certificates', i, 'ocsp'), 'not a DER OCSP response (openssl ocsp -respout writes one)'); return }
      let x509: X509Certificate
      try {
        x509 = new X509Certificate(cert)
      } catch (err) {
        ok = false; report(at('certificates', i, 'cert'), `not a PEM certificate: ${(err as Error).message}`); return
      }
      validity.push({ der: x509.raw, notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo) })
      // With a bad cipher or curve list, every key would seem not to fit.
      if (!listsOk) return
      try {
        contexts.push({ names: certificateNames(x509), cert, key, context: createSecureContext({ cert, key, ca: clientCa, ...settings }) })
      } catch (err) {
        ok = false; report(at('certificates', i, 'key'), `does not fit the certificate, or is not a PEM key: ${(err as Error).message}`); return
      }
      if (response !== undefined) ocsp.push({ der: x509.raw, response })
    })
    if (!ok) return undefined
    const first = contexts[0] as { cert: Buffer, key: Buffer }
    const mode = tls.clientAuth?.mode
    return new ServerTls({
      cert: first.cert,
      key: first.key,
      ca: clientCa,
      ...settings,
      requestCert: mode !== undefined,
      rejectUnauthorized: mode === 'require'
    }, contexts, ocsp, validity, files, contents)
  }
}

/** One digest of several files' content, each length-prefixed so that none can pass for another. */
function digest (contents: Buffer[]): string {
  const hash = createHash('sha256')
  for (const c of contents) hash.update(`${c.length}:`).update(c)
  return hash.digest('hex')
}

/**
 * Why OpenSSL refuses `list` as `option`, naming the entry at fault; undefined if it is fine.
 * Each entry that adds ciphers must match on its own: OpenSSL skips a misspelt one when another matches.
 */
function listProblem (kind: string, option: 'ciphers' | 'ecdhCurve', list: string): string | undefined {
  const refused = (value: string): string | undefined => {
    try {
      createSecureContext({ [option]: value })
      return undefined
    } catch (err) {
      return (err as Error).message
    }
  }
  const entries = list.split(':').filter(e => e !== '' && !/^[!+@-]/.test(e))
  const bad = entries.find(e => refused(e) !== undefined)
  if (bad !== undefined) return `unknown ${kind} "${bad}" (OpenSSL ${process.versions.openssl})`
  const whole = refused(list)
  return whole === undefined ? undefined : `OpenSSL refuses this ${kind} list: ${whole}`
}

/** The DNS names a certificate is for (subjectAltName; the CN when it has none), lower-cased. */
function certificateNames (cert: X509Certificate): string[] {
  const san = cert.subjectAltName
  if (san !== undefined) return san.split(', ').filter(s => s.startsWith('DNS:')).map(s => s.slice(4).toLowerCase())
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)
  return cn === null ? [] : [(cn[1] as string).toLowerCase()]
}

/**
 * Staples each certificate's OCSP response for clients that ask for one (status_request), from
 * the certificates `current` has at the handshake: a reload brings new responses.
 */
export function stapleOcsp (server: EventEmitter, current: () => ServerTls | undefined): void {
  server.on('OCSPRequest', (certificate: Buffer, _issuer: Buffer, done: (err: Error | null, response?: Buffer) => void) => {
    done(null, current()?.ocspResponse(certificate))
  })
}

/**
 * The ALPN choice (RFC 7301): `h2` when offered and HTTP/2 is on, else HTTP/1.1 by either name
 * (`http/1.0` too: curl --http1.0 offers only that, which Node's own choice does not know). A client
 * offering none of them still gets the alert no_application_protocol (RFC 7301 3.2): returning no
 * protocol is that alert in Node, which cannot go on without ALPN once a client offered some.
 */
export function selectAlpn (http2: boolean): (client: { protocols: string[] }) => string | undefined {
  return ({ protocols }) => http2 && protocols.includes('h2') ? 'h2'
    : protocols.includes('http/1.1') ? 'http/1.1'
      : protocols.includes('http/1.0') ? 'http/1.0' : undefined
}

/** Node's HTTP/2 listener speaks HTTP/1.1 only after ALPN `http/1.1` or none (any other is taken for h2): `http/1.0` is HTTP/1 too. */
export function http10AsHttp1 (server: EventEmitter): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => { if (socket.alpnProtocol === 'http/1.0') socket.alpnProtocol = 'http/1.1' })
}
