import type { Endpoints } from './endpoints.ts'
import { redactSecrets } from '../../config/redact.ts'
import type { AdminState } from './state.ts'

const STATUS = { success: 200, unchanged: 200, invalid: 422, failed: 500 } as const

/**
 * The active config (secrets redacted) and on-demand reload. Returns what resolves once the reloads
 * asked are answered: the stop awaits it before cutting the admin connections (a reload it
 * abandoned is answered 503 then, not with a reset).
 */
export function configEndpoints (api: Endpoints, state: AdminState): () => Promise<unknown> {
  const answering = new Set<Promise<void>>()
  api.add('GET', '/config', () => {
    const { file, hash, loadedAt, config } = state.runtime.loaded
    const last = state.reloader.last
    return { file, hash, loadedAt: loadedAt.toISOString(), lastReload: last ?? null, config: redactSecrets(config) }
  })
  // A reload's problems and error come redacted (ConfigError, the Reloader): as the log shows them.
  api.add('POST', '/config/reload', async (_req, reply) => {
    const answered = new Promise<void>(resolve => reply.raw.once('close', resolve))
    answering.add(answered)
    void answered.then(() => answering.delete(answered))
    const status = await state.reloader.reload('admin')
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
  return () => Promise.all(answering)
}
