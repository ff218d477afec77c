import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { createSecureContext, type ConnectionOptions } from 'node:tls'
import type { buildConnector } from 'undici'
import { readFilePath } from '../config/file-path.ts'
import type { UpstreamConfig } from '../config/schema.ts'

type TlsConfig = NonNullable<UpstreamConfig['tls']>
type Report = (key: 'ca' | 'cert' | 'key', message: string) => void

/**
 * The TLS options of an upstream's connections (undici's connector takes Node's tls.connect
 * options), with its PEM files read relative to `base`, the config file's directory. Unreadable
 * files and a certificate its key does not fit are reported at their key; the result is then undefined.
 */
export function upstreamTls (tls: TlsConfig, base: string, report: Report): ConnectionOptions | undefined {
  let ok = true
  const read = (key: 'ca' | 'cert' | 'key'): string | undefined => {
    const file = tls[key]
    if (file === undefined) return undefined
    try {
      return readFilePath(resolve(base, file)).toString('utf8')
    } catch (err) {
      ok = false
      report(key, `cannot read "${file}": ${(err as Error).message}`)
      return undefined
    }
  }
  const options: ConnectionOptions = { ca: read('ca'), cert: read('cert'), key: read('key'), servername: tls.servername, rejectUnauthorized: tls.rejectUnauthorized ?? true }
  if (!ok) return undefined
  if ((options.cert === undefined) !== (options.key === undefined)) {
    report(options.cert === undefined ? 'key' : 'cert', 'a client certificate needs both cert and key')
    return undefined
  }
  const caProblem = options.ca === undefined ? undefined : caFileProblem(options.ca as string)
  if (caProblem !== undefined) report('ca', caProblem)
  try {
    // Parses the PEMs and checks that the key fits the certificate, as a handshake would, but now.
    createSecureContext({ ca: caProblem === undefined ? options.ca : undefined, cert: options.cert, key: options.key })
  } catch (err) {
    const message = (err as Error).message
    report(/key/i.test(message) && options.key !== undefined ? 'key' : options.cert !== undefined && /cert/i.test(message) && !/ca/i.test(message) ? 'cert' : options.ca !== undefined ? 'ca' : 'cert', `invalid PEM: ${message}`)
    return undefined
  }
  return caProblem === undefined ? options : undefined
}

/** A PEM block: its label, and all of it. */
const PEM_BLOCK = /-----BEGIN ([^\r\n-]+)-----[\s\S]*?-----END \1-----/g

/**
 * Why `pem` is not a CA file, undefined when it is: PEM certificates (text between them allowed, as
 * in bundles), at least one, nothing else. OpenSSL takes any file as CAs, even an empty one or a
 * key: every handshake would then fail, instead of the load.
 */
export function caFileProblem (pem: string): string | undefined {
  const blocks = [...pem.matchAll(PEM_BLOCK)]
  if (blocks.length === 0) return 'not a PEM CA file: no certificate in it'
  if (pem.split('-----BEGIN ').length - 1 !== blocks.length) return 'not a PEM CA file: a block has no END line (the file cut short?)'
  for (const [i, [block, label]] of blocks.entries()) {
    // TRUSTED CERTIFICATE: OpenSSL's own form with trust settings, which Node reads too.
    if (label !== 'CERTIFICATE' && label !== 'TRUSTED CERTIFICATE') return `not a PEM CA file: block ${i + 1} is a ${label}, not a certificate`
    if (label === 'TRUSTED CERTIFICATE') continue
    try {
      void new X509Certificate(block)
    } catch (err) {
      return `not a PEM CA file: certificate ${i + 1} does not parse: ${(err as Error).message}`
    }
  }
  return undefined
}

/** Whether a connection error comes from the TLS handshake or the certificate check (logged as such). */
export function isTlsError (code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT') || code.includes('SIGNATURE') || code.includes('SELF_SIGNED'))
}

/**
 * `connect` for an address's servername (Target.servername of an IP target) sending no SNI (RFC 6066
 * has no addresses in it), so that Node checks the certificate against the address it connects to,
 * and undici keys its TLS sessions by it. Every other servername goes through as it is.
 */
export function sniConnector (connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) => { connect(options.servername != null && isIP(options.servername) !== 0 ? { ...options, servername: undefined } : options, callback) }
}
