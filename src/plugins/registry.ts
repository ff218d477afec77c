import { readdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { isPluginDefinition } from './define-plugin.ts'
import type { PluginDefinition } from './contract.ts'

// Built-ins are whatever folders plugins/ holds: adding a plugin never touches the core.
const BUILTIN_DIR = new URL('../../plugins/', import.meta.url)
const ENTRY_NAMES = ['index.js', 'index.ts']

let builtins: Promise<Map<string, PluginDefinition>> | undefined

export function builtinPlugins (): Promise<Map<string, PluginDefinition>> {
  builtins ??= discover()
  return builtins
}

async function discover (): Promise<Map<string, PluginDefinition>> {
  const found = new Map<string, PluginDefinition>()
  const dirs = (await readdir(BUILTIN_DIR, { withFileTypes: true })).filter(d => d.isDirectory()).map(d => d.name).sort()
  for (const dir of dirs) {
    const entry = ENTRY_NAMES.map(n => new URL(`${dir}/${n}`, BUILTIN_DIR)).find(u => existsSync(u))
    if (entry === undefined) continue
    const def = await importPlugin(entry.href)
    found.set(def.name, def)
  }
  return found
}

/** Imports a module whose default export is a definePlugin() result (`load`: how; default, import()). */
export async function importPlugin (href: string, load: (href: string) => Promise<unknown> = async h => import(h)): Promise<PluginDefinition> {
  const mod = await load(href) as { default?: unknown }
  if (!isPluginDefinition(mod.default)) throw new TypeError('its default export is not a definePlugin(...) result')
  return mod.default
}
