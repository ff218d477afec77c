import cluster, { type Worker } from 'node:cluster'
import { constants } from 'node:os'
import type { Logger } from 'pino'
import type { Reloader } from '../reload/reloader.ts'

type StopSignal = 'SIGTERM' | 'SIGINT'

/** What the "end now" line reports: the logger and requests in flight of the moment. */
interface Ending { log: () => Logger | undefined, inFlight: () => number | undefined }
let ending: Ending | undefined

/** How long a primary's workers get to end at once (their logs flushed) before they are killed. */
const WORKERS_END_MS = 3_000

/**
 * From now on a stop signal ends the process at once: by a handler, so the log's buffered lines are
 * written on exit (see createLogger), then by the signal itself (see dieBy). A primary ends its
 * workers first: none may go on draining, holding connections, once it is gone.
 */
export function endOnNextStopSignal (log: Ending['log'], inFlight: Ending['inFlight'] = () => undefined): void {
  const installed = ending !== undefined
  ending = { log, inFlight }
  if (installed) return
  let exiting = false
  const end = (signal: StopSignal) => {
    // A further signal while the workers end: no more waiting.
    if (exiting) dieBy(signal)
    exiting = true
    const workers = cluster.isPrimary ? Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead()) : []
    const log = ending?.log()
    log?.warn({ signal, inFlight: ending?.inFlight(), workers: workers.length > 0 ? workers.map(w => w.process.pid) : undefined }, 'second signal: ending now')
    void endWorkers(workers, signal, log).then(() => dieBy(signal))
  }
  process.on('SIGTERM', end)
  process.on('SIGINT', end)
}

/**
 * Exits, then dies by `signal` once every 'exit' handler (the log's flush, the state file's removal)
 * has run: a shell running `portcullis start; next` stops at a Ctrl-C that killed it (not at exit
 * 130), and systemd counts death by SIGTERM as a clean stop (exit 143 as a failure). A PID 1 (a
 * container without an init) ignores a signal it has no handler for, even its own: it exits 128 + the number.
 */
function dieBy (signal: StopSignal): never {
  if (process.pid !== 1) {
    // Registered last, so run last.
    process.once('exit', () => {
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
    })
  }
  process.exit(128 + constants.signals[signal])
}

/**
 * Passes `signal` on to `workers`, which are stopping (the first signal told them to drain): it ends
 * each at once, its log flushed. One still there after WORKERS_END_MS is killed.
 */
async function endWorkers (workers: Worker[], signal: StopSignal, log: Logger | undefined): Promise<void> {
  const exited = Promise.all(workers.map(w => new Promise(resolve => w.once('exit', resolve))))
  for (const w of workers) w.process.kill(signal)
  const kill = setTimeout(() => {
    for (const w of workers) {
      if (w.isDead()) continue
      log?.warn({ workerPid: w.process.pid }, 'worker did not end at once; killing it')
      w.process.kill('SIGKILL')
    }
  }, WORKERS_END_MS)
  await exited
  clearTimeout(kill)
}

/** Signals that arrived before serveUntilStopped took over. */
interface Held { hup: boolean, stop: StopSignal | undefined, log: Logger | undefined, release (): void }
let held: Held | undefined

const HELD_HUP = 'signal received during startup: the config is reloaded once the gateway has started'
const HELD_STOP = 'signal received during startup: the gateway stops once started (another one ends it at once)'

/** In a cluster worker: whether its signal handlers are in place, and what removes those of its start (see holdWorkerSignals). */
let workerHeld = false
let workerStarting: (() => void) | undefined

/**
 * Holds the signals that arrive while the gateway starts (a large config, a slow plugin setup): by
 * default SIGHUP would end the process (exit 129) and SIGTERM or SIGINT without a word or a
 * clean exit. serveUntilStopped applies them once started: a SIGHUP reloads (as `systemctl reload`
 * right after `start` expects), a SIGTERM or SIGINT stops. A second stop signal is not held: a
 * start that never ends can still be ended. A cluster worker's are its own: see holdWorkerSignals.
 */
export function holdStartupSignals (): void {
  if (cluster.isWorker) {
    holdWorkerSignals()
    return
  }
  if (held !== undefined) return
  const hup = () => {
    if (!state.hup) state.log?.info({ signal: 'SIGHUP' }, HELD_HUP)
    state.hup = true
  }
  const stop = (signal: StopSignal) => {
    state.stop = signal
    state.log?.info({ signal }, HELD_STOP)
    process.off('SIGTERM', stop)
    process.off('SIGINT', stop)
    endOnNextStopSignal(() => state.log)
  }
  const state: Held = {
    hup: false,
    stop: undefined,
    log: undefined,
    release () {
      process.off('SIGHUP', hup)
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
    }
  }
  process.on('SIGHUP', hup)
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  held = state
}

/** Whether a SIGTERM or SIGINT arrived while the gateway started. */
export const stopHeld = (): boolean => held?.stop !== undefined

/**
 * Signals to the process group (a terminal's Ctrl-C, `systemctl stop` to the whole cgroup, a HUP)
 * reach the workers too. Reloads are the primary's: a HUP never ends a worker (its default). A stop
 * signal before its first config serves ends it at once, exit 0, without a word: it has nothing to
 * drain, and the primary, signalled too, stops (see startPrimary). Once it serves, see workerServes.
 */
function holdWorkerSignals (): void {
  if (workerHeld) return
  workerHeld = true
  process.on('SIGHUP', () => {})
  const quit = () => process.exit(0)
  process.on('SIGTERM', quit)
  process.on('SIGINT', quit)
  workerStarting = () => {
    process.off('SIGTERM', quit)
    process.off('SIGINT', quit)
  }
}

/** In a worker whose first config serves, with its own SIGTERM and SIGINT handlers (a drain) in place: drops those of its start. */
export function workerServes (): void {
  workerStarting?.()
  workerStarting = undefined
}

/** Logs the signals held so far, and those still to come, to `log` (the config's logger, once there is one). */
export function logStartupSignals (log: Logger): void {
  if (held === undefined || held.log !== undefined) return
  held.log = log
  if (held.hup) log.info({ signal: 'SIGHUP' }, HELD_HUP)
  if (held.stop !== undefined) log.info({ signal: held.stop }, HELD_STOP)
}

/**
 * Serves until SIGTERM or SIGINT, then closes gracefully and resolves (a second signal during the
 * close ends the process at once). SIGHUP reloads the config. Signals held since the start (see
 * holdStartupSignals) are applied now.
 */
export async function serveUntilStopped (running: { readonly reloader: Reloader, readonly inFlight?: number, close (): Promise<void> }, log: Logger): Promise<void> {
  const early = held
  held = undefined
  const reload = () => {
    log.info({ signal: 'SIGHUP' }, 'signal received: reloading the config')
    void running.reloader.reload('signal')
  }
  process.on('SIGHUP', reload)
  await new Promise<void>(resolve => {
    const close = (signal: StopSignal, message: string) => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      endOnNextStopSignal(() => log, () => running.inFlight)
      log.info({ signal }, message)
      running.close().then(resolve, err => { log.error({ err }, 'unclean shutdown'); resolve() })
    }
    const stop = (signal: StopSignal) => close(signal, 'signal received')
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    early?.release()
    if (early?.stop !== undefined) close(early.stop, 'stopping: a signal was received during startup')
    else if (early?.hup === true) void running.reloader.reload('signal')
  })
  process.off('SIGHUP', reload)
}
