import { watch, watchFile, unwatchFile, readFileSync, realpathSync, type FSWatcher, type StatsListener } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'

export interface ConfigWatcher { close (): void }

/**
 * What `portcullis start` does: reload on change, watch problems logged as warnings. And one look
 * at once: the file may have been saved since it was read, while the gateway started (seconds,
 * with thousands of routes); the reload compares it with the active config's text.
 */
export function reloadOnChange (file: string, reload: () => void, log: Logger): ConfigWatcher {
  const watcher = watchConfig(file, reload, {
    onError: err => log.warn({ err, file }, 'config watch failed'),
    onWarning: message => log.warn({ file }, message)
  })
  reload()
  return watcher
}

/**
 * Calls `onChange` once the config file has settled after a change (`debounceMs` without events).
 *
 * Watches the file's directory, not the file: editors that save by writing a temporary file and
 * renaming it over the original replace the inode, which a watch on the file itself stops seeing
 * after the first save. Kubernetes ConfigMap volumes swap a `..data` symlink, also caught. When
 * the file is a symlink, the directory of its target is watched too. The file's own status is
 * also polled (every `pollMs`): a file bind-mounted on its own (Docker `-v ./gw.yaml:/app/gw.yaml`)
 * raises no directory event when written in place. `onChange` may fire for a save that changed
 * nothing, or that has truncated the file and not yet written it; the reloader skips unchanged
 * text, and waits for an empty file to be written. A directory that cannot be watched (EACCES: not
 * listable; ENOSPC: the user's inotify watches are used up) leaves the poll alone, with a warning.
 */
export function watchConfig (file: string, onChange: () => void,
  options: { debounceMs?: number, pollMs?: number, onError?: (err: Error) => void, onWarning?: (message: string) => void } = {}): ConfigWatcher {
  const debounceMs = options.debounceMs ?? 150
  let timer: NodeJS.Timeout | undefined
  const changed = () => {
    clearTimeout(timer)
    timer = setTimeout(onChange, debounceMs)
  }
  const paths = [resolve(file)]
  try {
    paths.push(realpathSync(file))
  } catch { /* the file is gone for now: the reload will say so */ }
  const watched = new Map<string, Set<string>>()
  for (const p of paths) watched.set(dirname(p), (watched.get(dirname(p)) ?? new Set()).add(basename(p)))

  if (isMountPoint(paths[paths.length - 1] as string)) {
    options.onWarning?.(`${file} is a bind mount of a single file: saves that replace the file on the host (most editors) ` +
      'are not seen through it, only writes in place. Mount its directory instead.')
  }
  const pollMs = options.pollMs ?? 1_000
  const polled: StatsListener = (now, before) => { if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) changed() }
  watchFile(paths[0] as string, { persistent: false, interval: pollMs }, polled)

  const watchers: FSWatcher[] = []
  for (const [dir, names] of watched) {
    let w: FSWatcher
    try {
      w = watch(dir, { persistent: true }, (_event, entry) => {
        if (entry === null || names.has(entry) || entry.startsWith('..')) changed()
      })
    } catch (err) {
      options.onWarning?.(`cannot watch ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ${file} is polled every ${pollMs / 1000} s instead`)
      continue
    }
    w.on('error', err => options.onError?.(err))
    watchers.push(w)
  }
  return {
    close () {
      clearTimeout(timer)
      unwatchFile(paths[0] as string, polled)
      for (const w of watchers) w.close()
    }
  }
}

/** Whether `path` is itself a mount point (Linux: /proc/self/mountinfo; elsewhere, false). */
function isMountPoint (path: string): boolean {
  try {
    // Field 5 is the mount point, with spaces and the like escaped as octal.
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .some(line => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === path)
  } catch {
    return false
  }
}
