import cluster from 'node:cluster'
import { constants } from 'node:os'
import type { Logger } from 'pino'
import type { Reloader } from '../reload/reloader.ts'

type StopSignal = 'SIGTERM' | 'SIGINT'

let ending = false

/**
 * The stop handlers are gone: a next stop signal ends the process at once, by its default action.
 * Except for a PID 1 (a container without an init), which ignores a signal it has no handler for:
 * it exits, with 128 + the signal's number.
 */
function endOnNextStopSignal (): void {
  if (process.pid !== 1 || ending) return
  ending = true
  const end = (signal: StopSignal) => process.exit(128 + constants.signals[signal])
  process.on('SIGTERM', end)
  process.on('SIGINT', end)
}

/** Signals that arrived before serveUntilStopped took over. */
interface Held { hup: boolean, stop: StopSignal | undefined, log: Logger | undefined, release (): void }
let held: Held | undefined

const HELD_HUP = 'signal received during startup: the config is reloaded once the gateway has started'
const HELD_STOP = 'signal received during startup: the gateway stops once started (another one ends it at once)'

/**
 * Holds the signals that arrive while the gateway starts (a large config, a slow plugin setup): by
 * default SIGHUP would end the process (exit 129) and SIGTERM or SIGINT without a word or a
 * clean exit. serveUntilStopped applies them once started: a SIGHUP reloads (as `systemctl reload`
 * right after `start` expects), a SIGTERM or SIGINT stops. A second stop signal is not held: a
 * start that never ends can still be ended. Not in a cluster worker, whose primary tells it what to do.
 */
export function holdStartupSignals (): void {
  if (held !== undefined || cluster.isWorker) return
  const hup = () => {
    if (!state.hup) state.log?.info({ signal: 'SIGHUP' }, HELD_HUP)
    state.hup = true
  }
  const stop = (signal: StopSignal) => {
    state.stop = signal
    state.log?.info({ signal }, HELD_STOP)
    process.off('SIGTERM', stop)
    process.off('SIGINT', stop)
    endOnNextStopSignal()
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
export async function serveUntilStopped (running: { readonly reloader: Reloader, close (): Promise<void> }, log: Logger): Promise<void> {
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
      endOnNextStopSignal()
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
