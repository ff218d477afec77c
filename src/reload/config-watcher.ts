import { watch, realpathSync, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'

export interface ConfigWatcher { close (): void }

/**
 * Calls `onChange` once the config file has settled after a change (`debounceMs` without events).
 *
 * Watches the file's directory, not the file: editors that save by writing a temporary file and
 * renaming it over the original replace the inode, which a watch on the file itself stops seeing
 * after the first save. Kubernetes ConfigMap volumes swap a `..data` symlink, also caught. When
 * the file is a symlink, the directory of its target is watched too. `onChange` may fire for a
 * save that changed nothing; the reloader skips unchanged text.
 */
export function watchConfig (file: string, onChange: () => void, options: { debounceMs?: number, onError?: (err: Error) => void } = {}): ConfigWatcher {
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

  const watchers: FSWatcher[] = []
  for (const [dir, names] of watched) {
    const w = watch(dir, { persistent: true }, (_event, entry) => {
      if (entry === null || names.has(entry) || entry.startsWith('..')) changed()
    })
    w.on('error', err => options.onError?.(err))
    watchers.push(w)
  }
  return {
    close () {
      clearTimeout(timer)
      for (const w of watchers) w.close()
    }
  }
}
