import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { createSecureContext, type SecureContext, type SecureVersion, type TlsOptions } from 'node:tls'
import type { GatewayConfig } from '../config/schema.ts'

type TlsConfig = NonNullable<GatewayConfig['server']['tls']>
type Report = (path: Array<string | number>, message: string) => void

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

  private constructor (options: TlsOptions, contexts: Array<{ names: string[], context: SecureContext }>) {
    this.options = options
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

  /** The context for SNI `name`: exact, then `*.` one label up, then the default. */
  select (name: string): SecureContext {
    const host = name.toLowerCase()
    const exact = this.#exact.get(host)
    if (exact !== undefined) return exact
    const dot = host.indexOf('.')
    return (dot === -1 ? undefined : this.#wildcard.get(host.slice(dot + 1))) ?? this.#default
  }

  /** Reads and checks `tls`'s files (relative to `base`); problems go to `report` at their key, and then the result is undefined. */
  static load (tls: TlsConfig, base: string, report: Report): ServerTls | undefined {
    const read = (path: Array<string | number>, file: string): string | undefined => {
      try {
        return readFileSync(resolve(base, file), 'utf8')
      } catch (err) {
        report(path, `cannot read "${file}": ${(err as Error).message}`)
        return undefined
      }
    }
    const at = (...rest: Array<string | number>) => ['server', 'tls', ...rest]
    const clientCa = tls.clientAuth === undefined ? undefined : read(at('clientAuth', 'ca'), tls.clientAuth.ca)
    const minVersion = (tls.minVersion ?? 'TLSv1.2') as SecureVersion
    const contexts: Array<{ names: string[], context: SecureContext, cert: string, key: string }> = []
    let ok = clientCa !== undefined || tls.clientAuth === undefined
    tls.certificates.forEach((c, i) => {
      const cert = read(at('certificates', i, 'cert'), c.cert)
      const key = read(at('certificates', i, 'key'), c.key)
      if (cert === undefined || key === undefined) { ok = false; return }
      let names: string[]
      try {
        names = certificateNames(new X509Certificate(cert))
      } catch (err) {
        ok = false; report(at('certificates', i, 'cert'), `not a PEM certificate: ${(err as Error).message}`); return
      }
      try {
        contexts.push({ names, cert, key, context: createSecureContext({ cert, key, ca: clientCa, minVersion }) })
      } catch (err) {
        ok = false; report(at('certificates', i, 'key'), `does not fit the certificate, or is not a PEM key: ${(err as Error).message}`)
      }
    })
    if (!ok) return undefined
    const first = contexts[0] as { cert: string, key: string }
    const mode = tls.clientAuth?.mode
    return new ServerTls({
      cert: first.cert,
      key: first.key,
      ca: clientCa,
      minVersion,
      requestCert: mode !== undefined,
      rejectUnauthorized: mode === 'require'
    }, contexts)
  }
}

/** The DNS names a certificate is for (subjectAltName; the CN when it has none), lower-cased. */
function certificateNames (cert: X509Certificate): string[] {
  const san = cert.subjectAltName
  if (san !== undefined) return san.split(', ').filter(s => s.startsWith('DNS:')).map(s => s.slice(4).toLowerCase())
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)
  return cn === null ? [] : [(cn[1] as string).toLowerCase()]
}
