import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.ts'
import { watchConfig, type ConfigWatcher } from './config-watcher.ts'

/**
 * Quiet time after the last change to a certificate file before the reload: certificate and key are
 * often written one after the other (certbot, a `cp` of each), and a reload in between would find
 * them mismatched. Renewals that swap a symlink (cert-manager, Kubernetes secrets) are atomic anyway.
 */
const CERTIFICATE_DEBOUNCE_MS = 500

export interface CertificateWatcher extends ConfigWatcher {
  /** Watches the files `loaded` names (after a reload changed them), and only those. Never throws: it runs once the reload has swapped. */
  sync (loaded: LoadedConfig): void
}

/**
 * Reloads when a file server.tls names (certificate, key, OCSP response, client CA) changes, the
 * same reload as SIGHUP: the config file's text may be unchanged. Each file is watched as the
 * config file is (its directory, and polled), so renewals that rename or swap symlinks are seen.
 */
export function reloadOnCertificateChange (loaded: LoadedConfig, reload: () => void, log: Logger): CertificateWatcher {
  const watchers = new Map<string, ConfigWatcher>()
  let timer: NodeJS.Timeout | undefined
  const changed = () => {
    clearTimeout(timer)
    timer = setTimeout(reload, CERTIFICATE_DEBOUNCE_MS)
  }
  const sync = (next: LoadedConfig) => {
    const files = new Set(next.serverTls?.files)
    for (const [file, w] of watchers) if (!files.has(file)) { w.close(); watchers.delete(file) }
    for (const file of files) {
      if (watchers.has(file)) continue
      watchers.set(file, watchConfig(file, changed, {
        debounceMs: 0,
        onError: err => log.warn({ err, file }, 'certificate file watch failed'),
        onWarning: message => log.warn({ file }, message)
      }))
    }
  }
  sync(loaded)
  return {
    sync,
    close () {
      clearTimeout(timer)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    }
  }
}
