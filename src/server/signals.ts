import type { Logger } from 'pino'
import type { Reloader } from '../reload/reloader.ts'

/**
 * Serves until SIGTERM or SIGINT, then closes gracefully and resolves (a second signal during the
 * close ends the process at once). SIGHUP reloads the config.
 */
export async function serveUntilStopped (running: { readonly reloader: Reloader, close (): Promise<void> }, log: Logger): Promise<void> {
  const reload = () => {
    log.info({ signal: 'SIGHUP' }, 'signal received: reloading the config')
    void running.reloader.reload('signal')
  }
  process.on('SIGHUP', reload)
  await new Promise<void>(resolve => {
    const stop = (signal: string) => {
      log.info({ signal }, 'signal received')
      running.close().then(resolve, err => { log.error({ err }, 'unclean shutdown'); resolve() })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  process.off('SIGHUP', reload)
}
