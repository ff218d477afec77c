import cluster from 'node:cluster'
import { dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import { createLogger } from '../../logging/logger.ts'
import { startPortcullis } from '../../server/start.ts'
import { logStartupSignals, serveUntilStopped } from '../../server/signals.ts'
import { startPrimary } from '../../workers/primary.ts'
import { workerCount, workerPlace } from '../../workers/worker-count.ts'
import { runWorker } from '../../workers/worker.ts'
import { loadOrReport, parseCommand } from '../options.ts'
import { HOST_REASONS, ListenError } from '../../server/listen-error.ts'
import { PluginSetupError } from '../../plugins/setup-error.ts'
import { pluginFrame } from '../../plugins/plugin-loader.ts'
import { describeThrown, loggedThrown } from '../../plugins/thrown.ts'
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
  if (cluster.isWorker) {
    logCrashes(undefined)
    return runWorker()
  }
  const opts = parseCommand(argv, HELP, {
    options: { 'no-watch': { type: 'boolean' } },
    optionsHelp: '--no-watch          no reload when FILE or its TLS files change (SIGHUP and /config/reload still do)'
  })
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  const logging = loaded.config.logging
  const log = createLogger({ level: logging?.level, pretty: logging?.pretty })
  logCrashes(log)
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
    // A plugin's setup error may quote a secret of the config.
    const shown = err instanceof ListenError ? err : scrubbed(err, hiddenValues(loaded.config))
    if (shown instanceof PluginSetupError) log.debug({ err: shown }, 'plugin setup failed')
    log.flush()
    console.error(`portcullis: ${shown instanceof ListenError ? listenAdvice(shown, loaded) : `cannot start: ${shown.message}${setupPlace(shown, loaded)}`}`)
    return 1
  }
  writeStateFile(running.url, running.adminUrl)
  await serveUntilStopped(running, log)
  log.flush()
  return 0
}

/** ` (at file:line:col)`: where in a loadPlugins module the setup threw (its message alone says not where), or ''. */
function setupPlace (err: PluginSetupError, loaded: LoadedConfig): string {
  const base = dirname(resolve(loaded.file))
  const at = pluginFrame(err.cause, (loaded.config.loadPlugins ?? []).map(rel => dirname(resolve(base, rel))))
  return at === undefined || err.message.includes(at) ? '' : ` (at ${at})`
}

let crashLog: Logger | undefined
let watchingCrashes = false

/**
 * An error no code caught (a plugin's floating promise, a throw in its timer) leaves the process in
 * a state no one can vouch for: Node ends it, as it should (exit code 1, its own print on stderr);
 * this says why first, as a fatal line of the log, where operators look. A monitor only: the crash
 * goes on (in worker mode the primary restarts the worker). `log`: the gateway's logger; none in a
 * worker, whose own is runWorker's: a JSON one made at the crash, flushed after it on exit.
 */
function logCrashes (log: Logger | undefined): void {
  crashLog = log
  if (watchingCrashes) return
  watchingCrashes = true
  process.on('uncaughtExceptionMonitor', (err, origin) => {
    try {
      const to = crashLog ?? createLogger({ pretty: false }).child({ worker: workerPlace()?.index })
      const msg = `uncaught ${origin === 'unhandledRejection' ? 'promise rejection' : 'exception'}: exiting`
      // What a plugin threw may be anything (a throwing getter, a revoked Proxy, a 5 MB message):
      // pino's own serializer threw on some, leaving no line at all. Read once, each part bounded.
      try {
        to.fatal({ err: loggedThrown(err), origin }, msg)
      } catch {
        to.fatal({ err: { message: describeThrown(err) }, origin }, msg)
      }
    } catch { /* Node's own print still says it */ }
  })
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
