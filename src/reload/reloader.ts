import { stat } from 'node:fs/promises'
import type { Logger } from 'pino'
import { ConfigError, formatIssue, type ConfigIssue } from '../config/config-error.ts'
import { configHash, parseConfig, readConfigText, type LoadedConfig } from '../config/load.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { LATE, within } from '../plugins/deadline.ts'
import { hiddenValues, scrubbed } from '../config/redact.ts'
import { frozenSettingIssues } from './frozen-settings.ts'
import { ReferencedFiles } from './referenced-files.ts'
import { warnUnresolvedTargets } from '../upstreams/unresolved-targets.ts'

const STOPPING = 'the gateway is stopping'
/** Triggers asking for a reload whatever the file's state: never answered by a file event's shortcuts. */
const EXPLICIT: ReadonlySet<ReloadTrigger> = new Set(['admin', 'signal'])
/** How long a watcher-triggered reload waits for an empty config file to be written before rejecting it. */
export const EMPTY_FILE_WAIT_MS = 3_000
/** A watcher-triggered reload that failed for a reason other than its text is tried again: first after this, then twice as long each time. */
const RETRY_FIRST_MS = 1_000
/** Tries of one text after its first failure before waiting for a new save: a build that always fails (in workers mode, switching workers back and forth) is not run for ever. */
const RETRY_TRIES = 4

/** What asked for a reload: `certificate` is a change to a file server.tls names, the config text itself maybe unchanged. */
export type ReloadTrigger = 'file' | 'signal' | 'admin' | 'certificate'

/** The outcome of one reload attempt, as the admin API reports it. */
export interface ReloadStatus {
  readonly trigger: ReloadTrigger
  /**
   * `unchanged`: a file event whose text is the active config's and whose referenced files (a
   * certificate event: certificate files) are as it read them, nothing done. Recorded (and
   * counted) only when the previous attempt failed: the file was put back, so an alert on the
   * failure clears; otherwise it is one of the extra events a save makes.
   */
  readonly result: 'success' | 'invalid' | 'failed' | 'unchanged'
  readonly at: string
  readonly durationMs: number
  /** The file's hash: the new active config on success, the rejected text otherwise. */
  readonly hash?: string
  /** Config problems (invalid). */
  readonly issues?: readonly ConfigIssue[]
  /** Why it failed: the build error, or "the gateway is stopping". */
  readonly error?: string
}

export interface ReloaderOptions {
  readonly file: string
  readonly log: Logger
  readonly metrics: Metrics
  /** For ${VAR} interpolation. Default process.env. */
  readonly env?: NodeJS.ProcessEnv
  /** The config now in service. */
  readonly active: () => LoadedConfig
  /** Puts a validated config in service (build, then swap); throws if that fails, leaving the old one serving. */
  readonly apply: (next: LoadedConfig) => Promise<unknown>
  /**
   * Whether some processes may serve another config than active() (workers: see WorkerPool.diverged):
   * the file's text, though the active config's, is then applied all the same. Default never.
   */
  readonly diverged?: () => boolean
}

/**
 * Reloads the config file: read, validate, check that nothing bound at start changed, then hand it
 * to `apply`. All or nothing: any problem leaves the active config serving. Attempts never
 * overlap: a trigger during a reload queues one more attempt, shared by every trigger that arrives
 * meanwhile (it reads the file as it is by then; an admin or signal trigger among them rules it, but
 * a build failure is retried all the same if a watcher's trigger was among them).
 */
export class Reloader {
  readonly #o: ReloaderOptions
  #running: Promise<ReloadStatus> | undefined
  #queued: Promise<ReloadStatus> | undefined
  /** The trigger the queued attempt runs with: the first to queue it, or the first explicit one to join. */
  #queuedTrigger: ReloadTrigger = 'file'
  /** The first watcher trigger (file or certificate) among those sharing the queued attempt: see #attempt's `watcher`. */
  #queuedWatcher: ReloadTrigger | undefined
  #last: ReloadStatus | undefined
  /**
   * The last rejected read (a ConfigError: the text is at fault): the text's hash and the file's
   * mtime, or why it could not be read. The other events of the same save (the directory watch, then
   * the poll) are not reported again; a save of the same text, or a touch, is tried again: a file it
   * names may have been fixed since. A build that failed otherwise (a plugin's setup, a worker that
   * exited) may succeed next time: it is retried (see #retryLater), not remembered.
   */
  #lastBad: string | undefined
  /**
   * The empty file watcher-triggered reloads wait on (see EMPTY_FILE_WAIT_MS): its inode and mtime,
   * and since when. Another save that leaves it empty (truncated again) is another wait.
   */
  #empty: { save: string, since: number } | undefined
  /** The watcher-triggered attempt to come: the empty file's wait, or a failed build's retry. */
  #later: NodeJS.Timeout | undefined
  /** The failed build to retry: its text's hash, its read (as #lastBad), and the wait before the retry. */
  #retry: { hash: string | undefined, read: string | undefined, ms: number, tries: number } | undefined
  #closed = false
  /** The stop did not wait for the attempt under way: see close(). */
  #abandoned = false
  /** Answers a caller of reload() still waiting, as close() abandons the attempt under way: by each caller. */
  readonly #waiting = new Set<() => void>()
  /** The files the active config read, as they were when it went into service. */
  #referenced: ReferencedFiles

  constructor (options: ReloaderOptions) {
    this.#o = options
    const active = options.active()
    this.#referenced = new ReferencedFiles(active, active.loadedAt.getTime())
  }

  /** The last attempt that did something, or found the file put back to the active config after a failed one. */
  get last (): ReloadStatus | undefined { return this.#last }

  /** Whether the gateway is stopping: a reload asked now fails, and one under way fails when it ends. */
  get stopping (): boolean { return this.#closed }

  /**
   * Resolves with the attempt's status; once the stop abandons it (see close()), at once: failed,
   * "the gateway is stopping" (so that POST /config/reload answers 503 before the admin listener closes).
   */
  reload (trigger: ReloadTrigger): Promise<ReloadStatus> {
    const asked = performance.now()
    const stopped = (): ReloadStatus => ({ trigger, result: 'failed', at: new Date().toISOString(), durationMs: Math.round(performance.now() - asked), error: STOPPING })
    if (this.#abandoned) return Promise.resolve(stopped())
    const attempt = this.#queue(trigger)
    return new Promise((resolve, reject) => {
      const abandon = () => { resolve(stopped()) }
      this.#waiting.add(abandon)
      attempt.then(resolve, reject).finally(() => this.#waiting.delete(abandon))
    })
  }

  #queue (trigger: ReloadTrigger): Promise<ReloadStatus> {
    if (this.#running === undefined) return this.#start(trigger)
    // An explicit trigger joining a watcher's queued attempt makes it explicit: it must build from
    // the file, not take a file event's shortcuts (unchanged, or already reported).
    if (this.#queued === undefined || (EXPLICIT.has(trigger) && !EXPLICIT.has(this.#queuedTrigger))) this.#queuedTrigger = trigger
    if (!EXPLICIT.has(trigger)) this.#queuedWatcher ??= trigger
    this.#queued ??= this.#running.then(() => {
      const watcher = this.#queuedWatcher
      this.#queued = undefined
      this.#queuedWatcher = undefined
      return this.#start(this.#queuedTrigger, watcher)
    })
    return this.#queued
  }

  /**
   * Waits for the attempts under way, for at most `ms`; later triggers fail ("the gateway is
   * stopping"). One still under way then (a plugin setup that hangs) is abandoned, so that the stop
   * keeps to server.shutdownTimeout: nothing it built is put in service, and it is released when
   * the build ends, if the process still runs by then. Its callers are answered at once (see reload()).
   */
  async close (ms: number): Promise<void> {
    this.#closed = true
    clearTimeout(this.#later)
    if (await within(Promise.all([this.#queued, this.#running]), ms) !== LATE) return
    this.#abandoned = true
    this.#o.log.warn({ waitedMs: ms }, `config reload abandoned: ${STOPPING}`)
    for (const abandon of this.#waiting) abandon()
  }

  #start (trigger: ReloadTrigger, watcher?: ReloadTrigger): Promise<ReloadStatus> {
    const run = this.#attempt(trigger, watcher).finally(() => { this.#running = undefined })
    this.#running = run
    return run
  }

  /** `watcher`: the watcher trigger an explicit `trigger` took the queued attempt over from (a failed build's retry, say). */
  async #attempt (trigger: ReloadTrigger, watcher?: ReloadTrigger): Promise<ReloadStatus> {
    const { file, log, metrics } = this.#o
    const started = performance.now()
    const startedAt = Date.now()
    const done = (result: ReloadStatus['result'], rest: Partial<ReloadStatus> = {}): ReloadStatus => {
      const status = { trigger, result, at: new Date().toISOString(), durationMs: Math.round(performance.now() - started), ...rest }
      const putBack = result === 'unchanged' && (this.#last?.result === 'invalid' || this.#last?.result === 'failed')
      if (putBack) log.info({ trigger, hash: status.hash }, `${trigger === 'certificate' ? 'certificate files are' : 'config file is'} back to the active config; nothing to reload`)
      if (result !== 'unchanged' || putBack) {
        this.#last = status
        metrics.configReloaded(result)
      }
      return status
    }
    // Asked during the stop (or queued behind the reload under way then): fails as that one does.
    if (this.#closed) {
      log.warn({ trigger }, `config reload not done: ${STOPPING}`)
      return done('failed', { error: STOPPING })
    }

    let hash: string | undefined
    let read: string | undefined
    let next: LoadedConfig | undefined
    // Already reported: not recorded, nor counted.
    const reported = (): ReloadStatus => ({ trigger, result: 'unchanged', at: new Date().toISOString(), durationMs: 0, hash })
    try {
      const text = await readConfigText(file)
      // A watcher saw a save begin (truncated, not yet written): wait for the write, its own event
      // or the timer; a file left empty is rejected after EMPTY_FILE_WAIT_MS. An explicit trigger rejects it at once.
      if (text.length === 0 && !EXPLICIT.has(trigger)) {
        const st = await stat(file).catch(() => undefined)
        const save = `${st?.ino} ${st?.mtimeMs}`
        if (this.#empty?.save !== save) {
          this.#empty = { save, since: performance.now() }
          log.info({ trigger, waitMs: EMPTY_FILE_WAIT_MS }, 'config file is empty: waiting for it to be written')
        }
        const left = this.#empty.since + EMPTY_FILE_WAIT_MS - performance.now()
        if (left > 0) {
          this.#again(left, trigger)
          return reported()
        }
      }
      hash = configHash(text)
      read = `${hash} ${(await stat(file).catch(() => undefined))?.mtimeMs}`
      const active = this.#o.active()
      // A file or certificate event for files as the active config read them: one save or renewal
      // makes several (the directory watch, then the poll), and a file put back after a failed
      // reload makes one too. A touch of the config file after an edit to a file it names reloads.
      if (hash === active.hash && this.#o.diverged?.() !== true && ((trigger === 'file' && !this.#referencedChanged(active)) || (trigger === 'certificate' && active.serverTls?.changedOnDisk() === false))) {
        this.#lastBad = undefined
        this.#settled()
        return done('unchanged', { hash })
      }
      // Another event of the save that failed (see #lastBad).
      if (trigger === 'file' && read === this.#lastBad) return reported()
      // Another event of the save whose build failed: retried when #later fires, not sooner.
      if (!EXPLICIT.has(trigger) && this.#later !== undefined && read === this.#retry?.read) return reported()
      next = await parseConfig(text, file, this.#o.env)
      const frozen = frozenSettingIssues(active, next, text, file)
      if (frozen.length > 0) throw new ConfigError(frozen)
      await this.#o.apply(next)
      this.#referenced = new ReferencedFiles(next, startedAt)
      this.#lastBad = undefined
      this.#settled()
      log.info({ trigger, hash, routes: next.config.routes.length, durationMs: Math.round(performance.now() - started) }, 'config reloaded')
      warnUnresolvedTargets(log, next.config, active.config)
      if (next.stalePlugins !== undefined && next.stalePlugins.length > 0) {
        log.warn({ plugins: next.stalePlugins }, 'plugin files changed since they were loaded: a reload keeps their old code; restart the gateway (workers: a rolling restart) to run the new one')
      }
      return done('success', { hash })
    } catch (err) {
      // Unreadable (deleted, say): the same reason again is another event of the same change.
      if (hash === undefined && err instanceof ConfigError) {
        if (trigger === 'file' && err.message === this.#lastBad) return reported()
        read = err.message
      }
      if (err instanceof ConfigError) {
        this.#lastBad = read
        this.#settled()
        log.error({ trigger, hash, issues: err.issues.map(formatIssue) }, `config reload rejected, the active config keeps serving: ${err.message}`)
        return done('invalid', { hash, issues: err.issues })
      }
      // A plugin's setup error may quote the new config's secrets (`signingKey abc is not valid`).
      const secrets = next === undefined ? [] : hiddenValues(next.config)
      const shown = scrubbed(err, secrets)
      // Ended during the stop (refused by the swap, or its build cut short): nothing keeps serving.
      if (this.#closed) {
        if (!this.#abandoned) log.warn({ err: shown, trigger, hash }, `config reload not done: ${STOPPING}`)
        return done('failed', { hash, error: STOPPING })
      }
      this.#lastBad = undefined
      // An explicit trigger that took over a watcher's attempt retries as the watcher would have:
      // its retry series would stop here otherwise, with no word of it.
      const retrying = EXPLICIT.has(trigger) ? watcher : trigger
      const retryMs = retrying === undefined ? undefined : this.#retryLater(hash, read, retrying)
      // Tried RETRY_TRIES times: another event of the same save is not, as for a text refused.
      if (retryMs === 0) this.#lastBad = read
      log.error({ err: shown, trigger, hash, ...retryMs === 0 ? { retries: RETRY_TRIES } : { retryMs } },
        `config reload failed while building the new runtime; the active config keeps serving${retryMs === 0 ? '; not tried again until the file is saved again' : ''}`)
      return done('failed', { hash, error: (shown as Error).message })
    }
  }

  /** Runs a watcher-triggered attempt in `ms` (instead of one already due), as `trigger` (file or certificate). */
  #again (ms: number, trigger: ReloadTrigger): void {
    if (this.#closed) return
    clearTimeout(this.#later)
    this.#later = setTimeout(() => { this.#later = undefined; void this.reload(trigger) }, ms).unref()
  }

  /**
   * A watcher's build failed, not for its text: tries it again, with no new save needed, first in
   * RETRY_FIRST_MS, then twice as long each time the same text fails, RETRY_TRIES times.
   * Returns the wait, 0 once given up.
   */
  #retryLater (hash: string | undefined, read: string | undefined, trigger: ReloadTrigger): number {
    // The same save's text (a new save, a touch included, starts over).
    const last = this.#retry !== undefined && this.#retry.hash === hash && this.#retry.read === read ? this.#retry : undefined
    if (last !== undefined && last.tries >= RETRY_TRIES) {
      this.#settled()
      return 0
    }
    const ms = last === undefined ? RETRY_FIRST_MS : last.ms * 2
    this.#retry = { hash, read, ms, tries: (last?.tries ?? 0) + 1 }
    this.#again(ms, trigger)
    return ms
  }

  /** The file's text is in service or rejected: no attempt is due without a new event. */
  #settled (): void {
    clearTimeout(this.#later)
    this.#later = undefined
    this.#retry = undefined
  }

  /** Whether a file the active config read changed since it went into service (put there by `apply` directly, without a reload: since it was loaded). */
  #referencedChanged (active: LoadedConfig): boolean {
    if (this.#referenced.loaded !== active) this.#referenced = new ReferencedFiles(active, active.loadedAt.getTime())
    return this.#referenced.changed()
  }
}
