import { readdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { ConfigError } from '../config/config-error.ts'
import { describeThrown } from './thrown.ts'
import { isPluginDefinition } from './define-plugin.ts'
import type { PluginDefinition } from './contract.ts'
import { byRunOrder, configsByPlugin } from './effective.ts'

// Built-ins are whatever folders plugins/ holds: adding a plugin never touches the core.
const BUILTIN_DIR = new URL('../../plugins/', import.meta.url)
const ENTRY_NAMES = ['index.js', 'index.ts']
/**
 * The folders whose plugins become built-ins: plugins/ beside these modules and, when they run
 * compiled (dist/src/), the sources' plugins/ that the build compiles into dist/plugins/.
 */
export const BUILTIN_FOLDERS: readonly string[] = [BUILTIN_DIR, ...import.meta.url.endsWith('.ts') ? [] : [new URL('../../../plugins/', import.meta.url)]]
  .map(u => fileURLToPath(u))

let builtins: Promise<Map<string, PluginDefinition>> | undefined

export function builtinPlugins (): Promise<Map<string, PluginDefinition>> {
  builtins ??= discoverPlugins(BUILTIN_DIR)
  return builtins
}

/**
 * The plugins of `folder`'s subfolders (those with an index.js or index.ts). One that cannot be
 * imported fails the whole (named, without a stack): a gateway, or a schema emitted, with one
 * built-in silently missing would not be the one shipped.
 */
export async function discoverPlugins (folder: URL): Promise<Map<string, PluginDefinition>> {
  const found = new Map<string, PluginDefinition>()
  const dirs = (await readdir(folder, { withFileTypes: true })).filter(d => d.isDirectory()).map(d => d.name).sort()
  for (const dir of dirs) {
    const entry = ENTRY_NAMES.map(n => new URL(`${dir}/${n}`, folder)).find(u => existsSync(u))
    if (entry === undefined) continue
    try {
      const def = await importPlugin(entry.href)
      found.set(def.name, def)
    } catch (err) {
      throw new ConfigError([{
        file: fileURLToPath(entry),
        line: 1,
        col: 1,
        path: '',
        message: `built-in plugin folder ${fileURLToPath(new URL(`${dir}/`, folder))} cannot be loaded: ${describeThrown(err)}\n` +
          `(${fileURLToPath(folder)} holds the built-in plugins only: keep a plugin of your own elsewhere and name it in loadPlugins)`
      }])
    }
  }
  return found
}

/** The file each imported plugin was imported from. */
const importedFrom = new WeakMap<PluginDefinition, string>()

/** The file `def` was imported from (importPlugin), if it was. */
export const pluginFile = (def: PluginDefinition): string | undefined => importedFrom.get(def)

/** Imports a module whose default export is a definePlugin() result (`load`: how; default, import()). */
export async function importPlugin (href: string, load: (href: string) => Promise<unknown> = async h => import(h)): Promise<PluginDefinition> {
  const mod = await load(href) as { default?: unknown }
  if (!isPluginDefinition(mod.default)) throw new TypeError('its default export is not a definePlugin(...) result')
  importedFrom.set(mod.default, fileURLToPath(href))
  return mod.default
}

/** The plugins warnOutsideBuiltins has warned of in this process. */
const warned = new WeakSet<PluginDefinition>()

/**
 * Warns of each plugin of `plugins` that is not a built-in (loadPlugins loaded it), that `config`
 * uses (top-level plugins: or a route's), and that runs before every built-in (a higher priority
 * than the outermost, or the same and a name sorted first). Any integer is a valid priority, but
 * such a plugin's replies pass no built-in's response hook: the headers response-headers or cors add.
 */
export async function warnOutsideBuiltins (plugins: ReadonlyMap<string, PluginDefinition>, config: { readonly plugins?: unknown, readonly routes?: unknown }, log: Logger): Promise<void> {
  const builtins = await builtinPlugins()
  const [outermost] = [...builtins.values()].sort(byRunOrder)
  if (outermost === undefined) return
  const used = configsByPlugin(config)
  for (const def of plugins.values()) {
    if (!used.has(def.name) || builtins.get(def.name) === def || byRunOrder(def, outermost) > 0 || warned.has(def)) continue
    // Once per process: a config reloaded often (a watched file) would repeat it for a plugin meant to run first.
    warned.add(def)
    log.warn({ plugin: def.name, priority: def.priority },
      `plugin "${def.name}" (priority ${def.priority}) runs before every built-in plugin (the outermost: ${outermost.name}, ${outermost.priority}): its replies pass none of their response hooks; give it a priority below ${outermost.priority} unless that is meant`)
  }
}
