import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { createSecureContext, type ConnectionOptions } from 'node:tls'
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
      return readFileSync(resolve(base, file), 'utf8')
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
  try {
    // Parses the PEMs and checks that the key fits the certificate, as a handshake would, but now.
    createSecureContext({ ca: options.ca, cert: options.cert, key: options.key })
  } catch (err) {
    const message = (err as Error).message
    report(/key/i.test(message) && options.key !== undefined ? 'key' : options.cert !== undefined && /cert/i.test(message) && !/ca/i.test(message) ? 'cert' : options.ca !== undefined ? 'ca' : 'cert', `invalid PEM: ${message}`)
    return undefined
  }
  return options
}

/** Whether a connection error comes from the TLS handshake or the certificate check (logged as such). */
export function isTlsError (code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT') || code.includes('SIGNATURE') || code.includes('SELF_SIGNED'))
}
