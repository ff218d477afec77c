import type { Endpoints } from './endpoints.ts'
import { redactSecrets } from './redact.ts'
import type { AdminState } from './state.ts'

const STATUS = { success: 200, unchanged: 200, invalid: 422, failed: 500 } as const

/** The active config (secrets redacted) and on-demand reload. */
export function configEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/config', () => {
    const { file, hash, loadedAt, config } = state.runtime.loaded
    return { file, hash, loadedAt: loadedAt.toISOString(), lastReload: state.reloader.last ?? null, config: redactSecrets(config) }
  })
  api.add('POST', '/config/reload', async (_req, reply) => {
    const status = await state.reloader.reload('admin')
    const code = STATUS[status.result]
    if (code === 200) return status
    const message = status.result === 'invalid'
      ? `the config file has ${status.issues?.length ?? 0} problem(s); the active config keeps serving`
      : `the new config could not be put in service (${status.error ?? 'unknown error'}); the active config keeps serving`
    // The status first: its own `error` (the build error, in the message) must not replace the code.
    return reply.code(code).send({ ...status, error: status.result === 'invalid' ? 'invalid_config' : 'reload_failed', message })
  })
}
