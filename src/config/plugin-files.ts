import { readdirSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'

const CODE = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'])
const TEST = /\.(?:test|spec)\.[^.]+$/
/** A plugin placed in a large folder (a project's root) is not walked whole. */
const MAX_FILES = 500

/**
 * The files a loadPlugins module may have imported: itself, then the code files under its folder
 * (not node_modules, dot folders or tests). Node's module hooks run on another thread and say
 * not which files they loaded: a plugin's folder stands for its import graph (the scaffold's
 * index.ts imports ./schema.ts), so an edit to any of them is seen.
 */
export function pluginFiles (entry: string): string[] {
  const files = [entry]
  const folders = [dirname(entry)]
  for (let folder = folders.shift(); folder !== undefined && files.length < MAX_FILES; folder = folders.shift()) {
    let entries
    try { entries = readdirSync(folder, { withFileTypes: true }) } catch { continue }
    for (const e of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue
      const path = join(folder, e.name)
      if (e.isDirectory()) folders.push(path)
      else if (e.isFile() && CODE.has(extname(e.name)) && !TEST.test(e.name) && path !== entry && files.length < MAX_FILES) files.push(path)
    }
  }
  return files
}
