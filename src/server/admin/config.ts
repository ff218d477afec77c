import type { ReloadStatus } from '../../reload/reloader.ts'
import type { Endpoints } from './endpoints.ts'
import { redactSecrets } from '../../config/redact.ts'
import type { AdminState } from './state.ts'

const STATUS = { success: 200, unchanged: 200, invalid: 422, failed: 500 } as const

/**
 * A reload attempt as shown: its problems and error quote the file (a mistyped URL, a plugin's
 * error naming one), so URL users, passwords and secret-looking query values are hidden (a secret
 * value the error quotes whole, the Reloader hid already).
 */
const shown = (status: ReloadStatus): ReloadStatus => redactSecrets(status) as ReloadStatus

/** The active config (secrets redacted) and on-demand reload. */
export function configEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/config', () => {
    const { file, hash, loadedAt, config } = state.runtime.loaded
    const last = state.reloader.last
    return { file, hash, loadedAt: loadedAt.toISOString(), lastReload: last === undefined ? null : shown(last), config: redactSecrets(config) }
  })
  api.add('POST', '/config/reload', async (_req, reply) => {
    const status = shown(await state.reloader.reload('admin'))
    // A reload asked during the stop, or under way when it began, fails: 503, it is the stop's doing.
    const stopping = status.result === 'failed' && state.reloader.stopping
    const code = stopping ? 503 : STATUS[status.result]
    if (code === 200) return status
    const message = status.result === 'invalid'
      ? `the config file has ${status.issues?.length ?? 0} problem(s); the active config keeps serving`
      : stopping
        ? `the config was not reloaded (${status.error ?? 'the gateway is stopping'})`
        : `the new config could not be put in service (${status.error ?? 'unknown error'}); the active config keeps serving`
    // The status first: its own `error` (the build error, in the message) must not replace the code.
    return reply.code(code).send({ ...status, error: status.result === 'invalid' ? 'invalid_config' : 'reload_failed', message })
  })
}
