import { createHash } from 'node:crypto'
import { statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { TSchema } from '@sinclair/typebox'
import { FILE_REF, readFilePath } from '../config/file-path.ts'
import { fileStamp, pluginFiles, sameStamp, type FileStamp } from '../config/plugin-files.ts'
import type { LoadedConfig } from '../config/load.ts'
import { walkSchema } from '../config/schema-refs.ts'

/**
 * The files a config reads at load besides its own text, absolute: `read`, whose contents are
 * compared: `loadPlugins` modules, each upstream's `tls` files, the files `server.tls` names, and
 * plugin values their schema marks as files (FilePath: jwt-auth's `jwksFile`), in plugin configs and
 * in consumers' credentials and metadata; `beside`, compared by mtime and size (fileStamp): the code
 * files beside each loadPlugins module it may import (pluginFiles), which may be many.
 * The load has already made those absolute.
 */
export function referencedFiles (loaded: LoadedConfig): { read: string[], beside: string[] } {
  const { config, plugins } = loaded
  const base = dirname(resolve(loaded.file))
  const files = new Set<string>(loaded.serverTls?.files)
  const beside = new Set<string>()
  for (const rel of config.loadPlugins ?? []) {
    const [entry, ...others] = pluginFiles(resolve(base, rel))
    files.add(entry as string)
    for (const f of others) beside.add(f)
  }
  for (const u of Object.values(config.upstreams)) {
    for (const f of [u.tls?.ca, u.tls?.cert, u.tls?.key]) if (f !== undefined) files.add(resolve(base, f))
  }
  const named = (schema: TSchema | undefined, data: unknown) => {
    if (schema === undefined) return
    walkSchema(schema, data, [], (s, d) => { if (typeof d === 'string' && s[FILE_REF] === true) files.add(d) })
  }
  for (const section of [config.plugins, ...config.routes.map(r => r.plugins)]) {
    for (const [name, data] of Object.entries(section ?? {})) if (data !== false) named(plugins.get(name)?.schema, data)
  }
  for (const c of config.consumers ?? []) {
    for (const [name, data] of Object.entries(c.metadata ?? {})) named(plugins.get(name)?.consumerMetadata, data)
    for (const [name, data] of Object.entries(c.credentials ?? {})) named(plugins.get(name)?.credentials?.schema, data)
  }
  for (const f of files) beside.delete(f)
  return { read: [...files], beside: [...beside] }
}

/**
 * The files a config in service read, as they were when it went into service. A file event for
 * the active config's text reloads only if one of them changed since: a touch of the config file
 * after an edit to one of them takes it, while the other events of a save do nothing.
 */
export class ReferencedFiles {
  readonly loaded: LoadedConfig
  readonly #files: readonly string[]
  readonly #digest: string
  readonly #stamps: ReadonlyMap<string, FileStamp>
  readonly #since: number

  /** `since`: when the load that built `loaded` began (ms since the epoch): a file modified from then on may have been read before the change. */
  constructor (loaded: LoadedConfig, since: number) {
    this.loaded = loaded
    const { read, beside } = referencedFiles(loaded)
    this.#files = read
    this.#digest = digest(read)
    this.#stamps = new Map(beside.map(f => [f, fileStamp(f)]))
    this.#since = since
  }

  /** Whether a file differs from what it held then (a plugin's `beside` files: its mtime or size), was modified since the load began, or cannot be read now. */
  changed (): boolean {
    try {
      if (this.#files.some(f => (statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) >= this.#since)) return true
      for (const [f, stamp] of this.#stamps) {
        const now = fileStamp(f)
        if (!sameStamp(now, stamp) || (now?.mtimeMs ?? Infinity) >= this.#since) return true
      }
    } catch {
      return true
    }
    return digest(this.#files) !== this.#digest
  }
}

function digest (files: readonly string[]): string {
  const hash = createHash('sha256')
  for (const f of files) {
    try {
      hash.update(f).update('\0').update(readFilePath(f)).update('\0')
    } catch (err) {
      hash.update(f).update('\0!').update((err as NodeJS.ErrnoException).code ?? 'unreadable').update('\0')
    }
  }
  return hash.digest('hex')
}
