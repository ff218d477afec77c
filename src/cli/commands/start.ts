import cluster from 'node:cluster'
import { createLogger } from '../../logging/logger.ts'
import { startPortcullis } from '../../server/start.ts'
import { logStartupSignals, serveUntilStopped } from '../../server/signals.ts'
import { startPrimary } from '../../workers/primary.ts'
import { workerCount } from '../../workers/worker-count.ts'
import { runWorker } from '../../workers/worker.ts'
import { loadOrReport, parseCommand } from '../options.ts'
import { HOST_REASONS, ListenError } from '../../server/listen-error.ts'
import { PluginSetupError } from '../../plugins/setup-error.ts'
import { writeStateFile } from '../../server/state-file.ts'
import { hiddenValues, scrubbed } from '../../config/redact.ts'
import { variableOf } from '../../config/key-variable.ts'
import type { LoadedConfig } from '../../config/load.ts'
import { locate } from '../../config/positions.ts'
import { readYaml } from '../../config/yaml-document.ts'

const HELP = `Usage: portcullis start [-c FILE] [--no-watch]

Starts the gateway with FILE (default config/gateway.yaml), in server.workers processes.
The config is reloaded, without dropping a request, when FILE changes (unless --no-watch),
on SIGHUP, and on POST /config/reload to the admin listener; an invalid file is rejected
and the running config kept. SIGTERM or SIGINT stops accepting connections, lets in-flight
requests finish (up to server.shutdownTimeout) and exits 0.`

export async function run (argv: string[]): Promise<number> {
  // node:cluster runs this same command in each worker; the primary sends it the config.
  if (cluster.isWorker) return runWorker()
  const opts = parseCommand(argv, HELP, { options: { 'no-watch': { type: 'boolean' } } })
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  const logging = loaded.config.logging
  const log = createLogger({ level: logging?.level, pretty: logging?.pretty })
  logStartupSignals(log)
  const watch = opts.values['no-watch'] !== true
  const workers = workerCount(loaded.config.server.workers)
  let running
  try {
    running = workers === 1
      ? await startPortcullis(loaded, log, undefined, { watch })
      : await startPrimary(loaded, log, { count: workers, watch })
  } catch (err) {
    if (!(err instanceof ListenError) && !(err instanceof PluginSetupError)) throw err
    log.flush()
    // A plugin's setup error may quote a secret of the config.
    console.error(`portcullis: ${err instanceof ListenError ? listenAdvice(err, loaded) : `cannot start: ${scrubbed(err, hiddenValues(loaded.config)).message}`}`)
    return 1
  }
  writeStateFile(running.url, running.adminUrl)
  await serveUntilStopped(running, log)
  log.flush()
  return 0
}

/** One line: what failed, and the key (where the file sets it, or the variable that does) to change. */
export function listenAdvice (err: ListenError, loaded: Pick<LoadedConfig, 'file' | 'text'>): string {
  const key = HOST_REASONS.has(err.reason) ? 'host' : 'port'
  const path = [...err.key.split('.'), key]
  const variable = variableOf(loaded.file, path)
  return `${err.message}. Change ${err.key}.${key} in ${placed(loaded, path)}${variable === undefined ? '' : ` (or set ${variable})`}.`
}

/** file:line:col of the key's value, as config errors say it; the file alone when it does not set the key (a default). */
function placed ({ file, text }: Pick<LoadedConfig, 'file' | 'text'>, path: string[]): string {
  const { doc, lines } = readYaml(text)
  if (!doc.hasIn(path)) return file
  const { line, col } = locate(doc, lines, path)
  return `${file}:${line}:${col}`
}
