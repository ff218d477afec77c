import { existsSync, realpathSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, join, relative, sep } from 'node:path'
import { register } from 'node:module'
import { fileURLToPath } from 'node:url'
import { assertRegularFile } from '../config/file-path.ts'

// Where "portcullis" resolves for a plugin: this package's public API, in whatever form is running
// (src/index.ts from a clone through tsx, dist/src/index.js installed or in the image).
const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts')
const API_URL = new URL(RUNNING_FROM_SOURCE ? '../index.ts' : '../index.js', import.meta.url).href

// Module hooks, inline so that they need no file of their own next to the compiled code. They run
// on Node's loader thread: "portcullis" resolves to API_URL from any file, and a .ts file is an ES
// module whose types esbuild strips (Node 20 cannot; tsx would compile a .ts file outside a
// `"type": "module"` package to CommonJS, where neither this resolution nor top-level await work).
// A .ts file may import another as `./helper.js` (TypeScript's NodeNext convention): when there is
// no such .js file, `./helper.ts` (.mjs: .mts, .cjs: .cts).
const HOOKS = `import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
let api, esbuild, typescript
export async function initialize (data) {
  api = data.api
  typescript = data.typescript
  if (typescript) esbuild = await import(data.esbuild)
}
export async function resolve (specifier, context, next) {
  if (specifier === 'portcullis') return { url: api, shortCircuit: true }
  try {
    return await next(specifier, context)
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/^\\.\\.?\\/.*\\.[mc]?js$/.test(specifier) || !/\\.[mc]?ts(?:\\?.*)?$/.test(context.parentURL ?? '')) throw err
    return next(specifier.slice(0, -2) + 'ts', context)
  }
}
export async function load (url, context, next) {
  if (!typescript || !url.startsWith('file:') || !/\\.[mc]?ts$/.test(new URL(url).pathname)) return next(url, context)
  const file = fileURLToPath(url)
  const { code } = await (esbuild.transform ?? esbuild.default.transform)(await readFile(file, 'utf8'),
    { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: file })
  return { format: 'module', source: code, shortCircuit: true }
}`

let registered = false

const FOLDER_ENTRIES = ['index.ts', 'index.js', 'index.mjs']

/**
 * How many times each module failed to import. Node keeps a failed module (a syntax error, a throw
 * at its top level) under its URL, failing again with the same error: once the file is fixed, the
 * next import asks for it under a URL Node has not seen (`?attempt=N`). A module that loaded keeps
 * its URL: edits to it need a restart (see LoadedConfig.stalePlugins). Only the module named is
 * asked again: a module it imports that failed too keeps failing until a restart.
 */
const failedImports = new Map<string, number>()

/**
 * Imports a user plugin module wherever it is: `import ... from 'portcullis'` works from a file
 * with no node_modules of its own, and `.ts` files load on Node versions that cannot strip types.
 */
export async function importUserModule (href: string): Promise<unknown> {
  const path = fileURLToPath(href)
  // A named pipe would hold the import, and the load, for ever.
  const stats = await stat(path).catch(() => undefined)
  if (stats === undefined) throw new Error(`no such file: ${path}${missingHint(path)}`)
  // A plugin's folder: its entry file, when it has one by a name plugin new or a build writes.
  const entry = stats.isDirectory() ? FOLDER_ENTRIES.find(f => existsSync(join(path, f))) : undefined
  if (entry !== undefined) throw new Error(`it is a directory, not a file: name the file in it, ${join(path, entry)} (end the path with /${entry})`)
  assertRegularFile(stats)
  registerPluginHooks()
  const failed = failedImports.get(href) ?? 0
  try {
    return await import(failed === 0 ? href : `${href}?attempt=${failed}`)
  } catch (err) {
    failedImports.set(href, failed + 1)
    // Node names the module that asked for it: this file, of no use to the user.
    if (err instanceof Error) err.message = err.message.replace(` imported from ${fileURLToPath(import.meta.url)}`, '')
    // A throw at the module's top level: its message alone says not where.
    const at = pluginFrame(err, [dirname(path)])
    if (at !== undefined && err instanceof Error && !err.message.includes(at)) err.message += ` (at ${at})`
    throw err
  }
}

/**
 * A stack frame's place, file:line:col (or a file: URL): `at fn (place)`, from the first " (" (a
 * folder may be named "my (copy)"), or `at place` (`at async place`).
 */
const FRAME = /^\s+at (?:.*? \((.+):(\d+):(\d+)\)|(?:async )?(.+):(\d+):(\d+))$/

/**
 * The gateway's own code (src/, dist/ and node_modules/ of its package, run from source or built):
 * never a plugin's place, even when a plugin's folder holds the gateway (a plugin file beside a clone's package.json).
 */
const GATEWAY_CODE = ['src', 'dist', 'node_modules'].map(d => fileURLToPath(new URL(`${RUNNING_FROM_SOURCE ? '../../' : '../../../'}${d}/`, import.meta.url)))

/**
 * Where in a plugin's code `thrown` was thrown: the first frame of its stack in one of `dirs` (the
 * folders of the loadPlugins files), outside the gateway's own code, as file:line:col; one in a
 * node_modules of such a folder (a library the plugin uses) only if none is of the plugin's own
 * files. Undefined: no stack, no frame there.
 */
export function pluginFrame (thrown: unknown, dirs: readonly string[]): string | undefined {
  let stack: unknown
  // An error, or what the log shows of one (a PluginSetupError's cause: see loggedThrown).
  try { stack = typeof thrown === 'object' && thrown !== null ? (thrown as { stack?: unknown }).stack : undefined } catch { return undefined }
  if (typeof stack !== 'string') return undefined
  // Stacks name files by their real paths: a folder reached through a symlink, by both.
  const folders = dirs.flatMap(d => { try { const real = realpathSync(d); return real === d ? [d] : [d, real] } catch { return [d] } })
  let inLibrary: string | undefined
  for (const line of stack.split('\n')) {
    const frame = FRAME.exec(line)
    if (frame === null) continue
    const [place, row, col] = frame[1] === undefined ? frame.slice(4) : frame.slice(1, 4)
    let file = place as string
    try { if (file.startsWith('file:')) file = fileURLToPath(file) } catch { continue }
    const inside = folders.filter(d => file.startsWith(d.endsWith(sep) ? d : d + sep))
    if (inside.length === 0 || GATEWAY_CODE.some(g => file.startsWith(g))) continue
    const at = `${file}:${row}:${col}`
    if (inside.some(d => !relative(d, file).split(sep).includes('node_modules'))) return at
    inLibrary ??= at
  }
  return inLibrary
}

/** Why a plugin file may be missing: a Windows `\`, a left-out extension (import needs it). */
function missingHint (path: string): string {
  if (sep === '/' && path.includes('\\')) return ` (paths are written with "/" here, not "\\")`
  const ext = ['.ts', '.js', '.mjs', '.mts'].find(e => existsSync(path + e))
  return ext === undefined ? '' : ` (there is ${basename(path)}${ext}: give the extension)`
}

/** Registers the hooks (once). Also what `node --import .../register-plugin-hooks.js` does, for a plugin's own tests. */
export function registerPluginHooks (): void {
  if (registered) return
  // Stack traces of a .ts plugin name its own lines (esbuild's inline source map), not those of the
  // stripped code. Only formatting a stack reads the maps: nothing on a request's path.
  process.setSourceMapsEnabled(true)
  // From source, a TypeScript loader is already in place (it is running this file).
  const data = { api: API_URL, typescript: !RUNNING_FROM_SOURCE, esbuild: import.meta.resolve('esbuild') }
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, { data })
  registered = true
}
