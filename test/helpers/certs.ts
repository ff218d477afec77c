import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A PEM certificate and key, as files (for configs) and as text (for test servers and clients). */
export interface Issued {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: string
  readonly key: string
}

/** A throw-away certificate authority in a temporary directory (openssl; EC P-256, so it is quick). */
export interface TestCa extends Issued {
  /** A certificate signed by this CA for `san` (e.g. "DNS:localhost,IP:127.0.0.1"); `client` for clientAuth; `days` valid (default 2; -1: expired yesterday). */
  issue (name: string, san: string, options?: { client?: boolean, days?: number }): Issued
  /** A DER OCSP response, signed by this CA, saying `leaf` is good (openssl ocsp); returns its file. */
  ocsp (leaf: Issued): string
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })

function files (dir: string, name: string): Issued {
  const certFile = join(dir, `${name}.pem`)
  const keyFile = join(dir, `${name}.key`)
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') }
}

/** Creates a CA named `name`; its directory is removed by `cleanup` (pass t.teardown). */
export function createTestCa (name: string, cleanup: (fn: () => void) => void): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ca-'))
  cleanup(() => rmSync(dir, { recursive: true, force: true }))
  openssl(['req', '-x509', ...EC, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', `/CN=${name}`])
  const ca = files(dir, 'ca')
  return {
    ...ca,
    issue (leaf, san, options = {}) {
      const ext = join(dir, `${leaf}.ext`)
      writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=${options.client === true ? 'clientAuth' : 'serverAuth'}\n`)
      openssl(['req', ...EC, '-keyout', join(dir, `${leaf}.key`), '-out', join(dir, `${leaf}.csr`), '-subj', `/CN=${leaf}`])
      openssl(['x509', '-req', '-in', join(dir, `${leaf}.csr`), '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial',
        '-out', join(dir, `${leaf}.pem`), '-days', String(options.days ?? 2), '-extfile', ext])
      return files(dir, leaf)
    },
    ocsp (leaf) {
      const base = leaf.certFile.replace(/\.pem$/, '')
      const serial = execFileSync('openssl', ['x509', '-serial', '-noout', '-in', leaf.certFile], { encoding: 'utf8' }).trim().split('=')[1] as string
      // The responder's database: this one certificate, valid ("V") until 2099.
      writeFileSync(`${base}.index`, `V\t991231235959Z\t\t${serial}\tunknown\t/CN=leaf\n`)
      openssl(['ocsp', '-issuer', ca.certFile, '-cert', leaf.certFile, '-no_nonce', '-reqout', `${base}.ocsp-req`])
      openssl(['ocsp', '-index', `${base}.index`, '-rsigner', ca.certFile, '-rkey', ca.keyFile, '-CA', ca.certFile,
        '-reqin', `${base}.ocsp-req`, '-respout', `${base}.ocsp`, '-ndays', '1'])
      return `${base}.ocsp`
    }
  }
}
