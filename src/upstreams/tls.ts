import { createPrivateKey, X509Certificate } from 'node:crypto'
import { isIP, type Socket } from 'node:net'
import { resolve } from 'node:path'
import { createSecureContext, type ConnectionOptions } from 'node:tls'
import type { buildConnector } from 'undici'
import { readFilePath } from '../config/file-path.ts'
import { hiddenAt } from '../config/redact.ts'
import { REDACTED } from '../config/url-userinfo.ts'
import type { UpstreamConfig } from '../config/schema.ts'

type TlsConfig = NonNullable<UpstreamConfig['tls']>
type Report = (key: 'ca' | 'cert' | 'key', message: string) => void

/**
 * The TLS options of an upstream's connections (undici's connector takes Node's tls.connect
 * options), with its PEM files read relative to `base`, the config file's directory. Unreadable
 * files, files that are not what their key says and a certificate its key does not fit are reported
 * at their key; the result is then undefined.
 */
export function upstreamTls (tls: TlsConfig, base: string, report: Report): ConnectionOptions | undefined {
  let ok = true
  const read = (key: 'ca' | 'cert' | 'key'): string | undefined => {
    const file = tls[key]
    if (file === undefined) return undefined
    const abs = resolve(base, file)
    try {
      return readFilePath(abs).toString('utf8')
    } catch (err) {
      ok = false
      report(key, unreadableFile(['tls', key], file, abs, err as Error))
      return undefined
    }
  }
  const options: ConnectionOptions = { ca: read('ca'), cert: read('cert'), key: read('key'), servername: tls.servername, rejectUnauthorized: tls.rejectUnauthorized ?? true }
  if (!ok) return undefined
  if ((options.cert === undefined) !== (options.key === undefined)) {
    report(options.cert === undefined ? 'key' : 'cert', 'a client certificate needs both cert and key')
    return undefined
  }
  // Each file on its own first, so that a problem is told at its key: OpenSSL's messages for the
  // secure context ("bad decrypt", "no start line") do not say which file they are about.
  for (const [key, problemOf] of [['ca', caFileProblem], ['cert', certificateProblem], ['key', keyProblem]] as const) {
    const problem = options[key] === undefined ? undefined : problemOf(options[key] as string)
    if (problem !== undefined) { ok = false; report(key, problem) }
  }
  if (!ok) return undefined
  try {
    // Checks that the key fits the certificate, as a handshake would, but now.
    createSecureContext({ ca: options.ca, cert: options.cert, key: options.key })
  } catch (err) {
    const message = (err as Error).message
    if (options.key !== undefined) report('key', `does not fit the certificate: ${message}`)
    else report('ca', `refused by OpenSSL: ${message}`)
    return undefined
  }
  return options
}

// A PEM block's first line: text given where a file's path is expected.
const PEM_BEGIN = /-----BEGIN [^\r\n]*-----/

/**
 * Why the file `file` (`abs` once resolved) a TLS setting names cannot be read (`err`), `keys` its
 * config path's keys from `tls` on. The file is quoted unless GET /config hides the setting's value
 * (a key's), nor then in the error's own message. PEM text given for it (a ${VAR} holding a
 * Kubernetes secret's key, or the text pasted) is said to be that, never quoted.
 */
export function unreadableFile (keys: readonly string[], file: string, abs: string, err: Error): string {
  if (PEM_BEGIN.test(file)) return 'holds PEM text, not a file path: write the PEM to a file and give that file\'s path'
  return hiddenAt(keys) ? `cannot read the file it names: ${err.message.replaceAll(abs, REDACTED)}` : `cannot read "${file}": ${err.message}`
}

/** Why `pem` is not a certificate (the client certificate, then its chain), undefined when it is. */
function certificateProblem (pem: string): string | undefined {
  try {
    void new X509Certificate(pem)
    return undefined
  } catch (err) {
    return `not a PEM certificate: ${(err as Error).message}`
  }
}

/** Why `pem` is not a private key the gateway can use, undefined when it is. */
function keyProblem (pem: string): string | undefined {
  try {
    createPrivateKey(pem)
    return undefined
  } catch (err) {
    // There is no passphrase setting; OpenSSL would say "bad decrypt" or "interrupted or cancelled".
    if (/^-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: *4, *ENCRYPTED/m.test(pem)) return 'encrypted private keys are not supported: decrypt it'
    return `not a PEM private key: ${(err as Error).message}`
  }
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

/** The alert (116) a TLS 1.3 server sends when the client gave no certificate and it wants one. */
const CERTIFICATE_REQUIRED = 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'
const CLIENT_CERT_HINT = 'the upstream may require a client certificate (tls.cert, tls.key)'

type CodedError = Error & { code?: string, cause?: unknown }

/** What a failed try is logged as: a TLS failure told apart, with what to do when the upstream wants a client certificate. */
export function upstreamFailureMessage (err: Error): string {
  const { code, cause } = err as CodedError
  const causeCode = (cause as CodedError | undefined)?.code
  if (code === CERTIFICATE_REQUIRED || causeCode === CERTIFICATE_REQUIRED) return `upstream TLS handshake failed: ${CLIENT_CERT_HINT}`
  return isTlsError(code) || isTlsError(causeCode) ? 'upstream TLS handshake failed (certificate not trusted, wrong name, or TLS misconfigured)' : 'upstream request failed'
}

/**
 * Under TLS 1.3 the client's handshake is over before the server checks the client's certificate:
 * the server's alert (certificate required) comes as an 'error' after the request went
 * out, and undici, seeing the connection end, fails the request with UND_ERR_SOCKET "other side
 * closed" instead. That error gets the alert as its cause and in its message (the health checks'
 * reason, the log), with a hint when the server wants a certificate. A wrapper per connection, not
 * per request.
 */
function keepTlsAlert (socket: Socket): void {
  let alert: CodedError | undefined
  // First among the listeners: undici's reads the error after this one has completed it.
  socket.prependListener('error', (err: CodedError) => {
    if (alert === undefined && isTlsError(err.code)) alert = err
    else if (alert !== undefined && err.code === 'UND_ERR_SOCKET' && err.cause === undefined) {
      err.cause = alert
      err.message += ` (${String(alert.code)})${alert.code === CERTIFICATE_REQUIRED ? `: ${CLIENT_CERT_HINT}` : ''}`
    }
  })
}

/**
 * `connect` for an address's servername (Target.servername of an IP target) sending no SNI (RFC 6066
 * has no addresses in it), so that Node checks the certificate against the address it connects to,
 * and undici keys its TLS sessions by it. Every other servername goes through as it is. A TLS
 * connection keeps the server's alerts (keepTlsAlert).
 */
export function sniConnector (connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) => {
    const tls = options.protocol === 'https:'
    connect(options.servername != null && isIP(options.servername) !== 0 ? { ...options, servername: undefined } : options,
      tls ? (...args) => { if (args[1] != null) keepTlsAlert(args[1]); callback(...args) } : callback)
  }
}
