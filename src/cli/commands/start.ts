import { createLogger } from '../../logging/logger.ts'
import { startPortcullis } from '../../server/start.ts'
import { loadOrReport, parseCommand } from '../options.ts'

export const summary = 'start the gateway'
const HELP = `Usage: portcullis start [-c FILE]

Starts the gateway with FILE (default config/gateway.yaml). SIGTERM or SIGINT stops accepting
connections, lets in-flight requests finish (up to server.shutdownTimeout) and exits 0.`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP)
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  const logging = loaded.config.logging
  const log = createLogger({ level: logging?.level, pretty: logging?.pretty })
  const running = await startPortcullis(loaded, log)
  await new Promise<void>(resolve => {
    const stop = (signal: string) => {
      log.info({ signal }, 'signal received')
      running.close().then(resolve, err => { log.error({ err }, 'unclean shutdown'); resolve() })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  log.flush()
  return 0
}
