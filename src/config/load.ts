import { existsSync, readdirSync } from 'node:fs'
import { setImmediate as turn } from 'node:timers/promises'
import { readFile, stat } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { dirname, isAbsolute, join, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { METHODS } from 'node:http'
import { isScalar, isSeq, type Document } from 'yaml'
import { configSchema, type GatewayConfig } from './schema.ts'
import { documentKeys, formatPath, hideKeys, locate, type KeyPath, type KnownKeys } from './positions.ts'
import { validateSchema, type SchemaProblem } from './validate.ts'
import { ConfigError, hiddenIn, type ConfigIssue } from './config-error.ts'
import { notRegularFile } from './file-path.ts'
import { fileStamp, pluginFiles, sameStamp, type FileStamp } from './plugin-files.ts'
import { syntaxIssue } from './yaml-syntax.ts'
import { shapeIssue, toData } from './yaml-aliases.ts'
import { readYaml, interpolateDocument, type Interpolation } from './yaml-document.ts'
import { shown } from './interpolate.ts'
import { hiddenAt, hiddenValues, shownAt } from './redact.ts'
import { hideUrlSecrets, hideUserinfo, REDACTED } from './url-userinfo.ts'
import { keepWritten, writtenScalars } from './written-text.ts'
import { plainDataOffThread } from './yaml-off-thread.ts'
import { mergeDedentedKeys } from './dedent-hint.ts'
import { didYouMean, nearest, quoteKey, schemaKeys } from './suggest.ts'
import { checkConfig, type Unsound } from './check.ts'
import { routeWarnings } from './route-warnings.ts'
import { upstreamWarnings } from './check-upstreams.ts'
import { upstreamTls } from '../upstreams/tls.ts'
import { ServerTls } from '../server/server-tls.ts'
import type { ConnectionOptions } from 'node:tls'
import { builtinPlugins, importPlugin } from '../plugins/registry.ts'
import { importUserModule } from '../plugins/plugin-loader.ts'
import type { PluginDefinition } from '../plugins/contract.ts'
import { describeThrown } from '../plugins/thrown.ts'
import { pluginWarnings } from '../plugins/plugin-warnings.ts'

/** A config that passed every check, with what is needed to build a runtime from it. */
export interface LoadedConfig {
  /** The file as the user named it (used in messages). */
  readonly file: string
  readonly config: GatewayConfig
  /** sha256 of the file's text. */
  readonly hash: string
  /** The file's text, as read (before interpolation): what a worker process is sent. */
  readonly text: string
  /** When its load began: a file it names changed from then on may have been read before the change (reload/referenced-files.ts). */
  readonly loadedAt: Date
  /** Every plugin a route may use: built-ins and those named in loadPlugins. */
  readonly plugins: ReadonlyMap<string, PluginDefinition>
  /** The TLS options of each upstream with `tls`, its PEM files read at load. */
  readonly upstreamTls?: ReadonlyMap<string, ConnectionOptions>
  /** server.tls's certificates, read and checked at load. */
  readonly serverTls?: ServerTls
  /** loadPlugins entries whose file changed since this process first imported it: the old code still runs. */
  readonly stalePlugins?: readonly string[]
  /** What loads but may not be meant (a `$NAME` kept as text while NAME is set, no routes, a path ending in /, a plugin's warnings): logged at load, printed by validate. */
  readonly warnings?: readonly ConfigIssue[]
}

/**
 * The mtime and size (fileStamp) of each plugin's files (pluginFiles) when this process first imported it. Node caches
 * ES modules by URL, so an edited plugin is not seen before a restart (a cache-busting URL would
 * leak a module per reload), nor an edited file it imports.
 */
const importedPlugins = new Map<string, ReadonlyMap<string, FileStamp>>()

/** Whether a file of the plugin at `path` differs from the one this process imported; records a first import. */
function changedSinceImport (path: string): boolean {
  const imported = importedPlugins.get(path)
  if (imported === undefined) { importedPlugins.set(path, new Map(pluginFiles(path).map(f => [f, fileStamp(f)]))); return false }
  return [...imported].some(([file, stamp]) => !sameStamp(fileStamp(file), stamp))
}

const schema = configSchema()

/** Reads, interpolates and validates a config file. Throws ConfigError listing every problem. */
export async function loadConfig (file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  return parseConfig(await readConfigText(file), file, env)
}

/** The hash LoadedConfig.hash holds: sha256 of the file's text. */
export function configHash (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/**
 * The largest config file read. 20,000 routes take some 4 MB; a larger file is no config (a log, an
 * image named by mistake), and reading one of hundreds of MB failed only after taking that memory.
 */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024

/**
 * The file's text; a ConfigError, at no line, if it cannot be read, is not a regular file (symlinks
 * followed), is too large, is UTF-16 or holds NUL bytes (a binary file: no YAML holds one). A named pipe (`sops exec-file`, a shell's `<(...)`) would
 * block a reload in open() for ever, with a thread of the pool, and can be read once at most:
 * refused before it is opened.
 */
export async function readConfigText (file: string): Promise<string> {
  const refuse = (message: string) => new ConfigError([{ file, line: 0, col: 0, path: '', message }])
  const cannot = (message: string) => refuse(`cannot read file: ${message}`)
  try {
    const stats = await stat(file)
    const kind = notRegularFile(stats)
    if (kind === 'a directory') throw cannot(`it is a directory, not a file: give the config file's path with -c PATH${yamlIn(file)}`)
    if (kind !== undefined) {
      const sops = kind === 'a named pipe (FIFO)' ? '; sops exec-file: --no-fifo' : ''
      throw cannot(`it is ${kind}, not a regular file: the gateway reads it again on every reload (write the config to a file${sops})`)
    }
    if (stats.size > MAX_CONFIG_BYTES) throw refuse(`the file is ${mebibytes(stats.size)} MiB: a config file may be at most ${mebibytes(MAX_CONFIG_BYTES)} MiB`)
    const bytes = await readFile(file)
    if (isUtf16(bytes)) throw refuse('the file is UTF-16 (as Notepad saves "Unicode"): save it as UTF-8')
    // YAML text holds no NUL (a "\0" escape is how it writes one): the file is binary or corrupt.
    const nul = bytes.indexOf(0)
    if (nul !== -1) throw refuse(`the file is not text (a binary file?): it holds a NUL byte, at byte ${nul}; a config file is YAML text, in UTF-8`)
    return bytes.toString('utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw cannot(code === 'ENOENT' ? `ENOENT: the file does not exist: ${resolve(file)}${missingHint(file)}` : (err as Error).message)
  }
}

const mebibytes = (bytes: number): number => Math.ceil(bytes / 2 ** 20)

/**
 * A byte order mark of UTF-16 (or UTF-32), or ASCII text in UTF-16 without one: a NUL in every
 * fourth byte or more, nearly all on one side of the byte pairs (a CJK character may put one on the
 * other): a file of NULs alone is no text.
 */
function isUtf16 (bytes: Buffer): boolean {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) return true
  const head = bytes.subarray(0, 1024)
  let [even, odd] = [0, 0]
  head.forEach((b, i) => { if (b === 0 && i % 2 === 0) even++; else if (b === 0) odd++ })
  return (even + odd) * 4 >= head.length && head.length > 0 && Math.min(even, odd) * 8 <= Math.max(even, odd)
}

/** What to try for a config file that does not exist: the current directory it was looked for from, and why it may be elsewhere. */
function missingHint (file: string): string {
  const from = isAbsolute(file) ? '' : ` (from the current directory ${process.cwd()})`
  if (sep === '/' && file.includes('\\')) return `${from}; paths are written with "/" here: ${file.replaceAll('\\', '/')}`
  const other = /\.yaml$/i.test(file) ? file.slice(0, -5) + '.yml' : /\.yml$/i.test(file) ? file.slice(0, -4) + '.yaml' : undefined
  if (other !== undefined && existsSync(other)) return `${from}; there is ${other}`
  return `${from}; give the config file's path with -c PATH`
}

/** ` (it holds dir/x.yaml)`: the YAML files (the first few) of a directory given as the config file. */
function yamlIn (dir: string): string {
  try {
    const names = readdirSync(dir).filter(n => /\.ya?ml$/i.test(n)).sort().slice(0, 3)
    return names.length === 0 ? '' : ` (it holds ${names.map(n => join(dir, n)).join(', ')})`
  } catch {
    return ''
  }
}

/**
 * Text from this size on is parsed in a worker thread. Below it the parse blocks for less than some
 * 60 ms, less than the worker's start would delay the answer (about 200 ms, though not this thread).
 */
export const OFF_THREAD_CHARS = 64 * 1024

type At = (path: KeyPath, message: string, where?: 'key' | 'value') => ConfigIssue

/** As loadConfig, from text already read (`file` names it in messages and anchors relative paths). */
export async function parseConfig (text: string, file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const began = new Date()
  return { ...await parse(text, file, env), loadedAt: began }
}

async function parse (text: string, file: string, env: NodeJS.ProcessEnv): Promise<LoadedConfig> {
  // A large config is parsed off the event loop. Positions are needed only for problems: when the
  // checks find any, the document is parsed here after all, and everything runs again to place them.
  const plain = text.length >= OFF_THREAD_CHARS ? await plainDataOffThread(text, env) : undefined
  if (plain !== undefined) {
    const unplaced: At = (path, message) => ({ file, line: 0, col: 0, path: formatPath(path), message })
    keepWritten(plain.data, plain.written)
    try {
      return await fromData(plain.data, text, file, [], unplaced, plain.warnings.map(w => ({ ...w, file })))
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
    }
  }
  const { doc, lines } = readYaml(text)
  // A key written with no value may be a secret or a piece of one: shownKey hides it by the keys the config knows and those beside it.
  const keys = await knownKeys()
  const known = documentKeys(doc, keys)
  const at: At = (path, message, where = 'value') => ({ file, ...locate(doc, lines, path, where), path: formatPath(path, known), message: hideKeys(path, message, known) })

  // yaml caught a stack overflow of its own (a config nested some thousand levels deep): said as toData says it, where MAX_DEPTH is passed.
  const deep = doc.errors.some(e => e.code === 'RESOURCE_EXHAUSTION') ? shapeIssue(doc, lines, file) : undefined
  if (deep !== undefined) throw new ConfigError([deep])
  // One syntax mistake tends to cascade into several parser errors: report it once.
  if (doc.errors.length > 0) throw new ConfigError([syntaxIssue(doc.errors, doc, text, lines, file, keys)])
  // Between the steps, the event loop turns: a reload of a large config (thousands of routes) stalls
  // the requests in flight for each step, not for all of them at once.
  await turn()
  const interpolated = new Map<string, Interpolation>()
  const warnings: ConfigIssue[] = []
  const issues = interpolateDocument(doc, env, at, interpolated, (path, message) => warnings.push(at(path, message)))
  const js = toData(doc, lines, file)
  if ('issue' in js) throw new ConfigError([js.issue])
  keepWritten(js.data, writtenScalars(doc))
  return fromData(js.data, text, file, issues, withSource(at, interpolated, js.data, dirname(resolve(file))), warnings, interpolated, doc, known)
}

let builtinKeys: Promise<Set<string>> | undefined

/** The keys a config may hold somewhere (the gateway's, the built-in plugins' and their names; found once): for a syntax issue's hint, a problem's path. */
function knownKeys (): Promise<ReadonlySet<string>> {
  builtinKeys ??= builtinPlugins().then(plugins => {
    const builtins = [...plugins.values()]
    const keys = schemaKeys([schema, ...builtins.flatMap(d => [d.schema, d.credentials?.schema, d.consumerMetadata])])
    for (const d of builtins) keys.add(d.name)
    return keys
  })
  return builtinKeys
}

/**
 * `at`, saying of a value that came from ${VAR}s what it was and how it is written: `port: "${PORT}"`
 * with PORT=abc fails as "abc", which the file does not show. No more of a secret than GET /config shows.
 * Not what a file path (FilePath, made absolute from `base` in `data` by the checks) was: its
 * problem quotes it as read, or says why it is none (a ${VAR} holding a JWKS's JSON, a PEM).
 */
function withSource (at: At, interpolated: ReadonlyMap<string, Interpolation>, data: unknown, base: string): At {
  if (interpolated.size === 0) return at
  return (path, message, where = 'value') => {
    const from = where === 'value' ? interpolated.get(formatPath(path)) : undefined
    const now = from === undefined ? undefined : path.reduce<unknown>((node, k) => (node as Record<string | number, unknown> | null | undefined)?.[k], data)
    const file = from !== undefined && now !== from.value && now === resolve(base, from.value)
    const said = from === undefined ? undefined : source(path, from, message, file)
    if (from === undefined || said === undefined) return at(path, message, where)
    // `(got "soons")` becomes `(got "soons" from "${T:-soon}s")`.
    const got = `(got ${shown(from.value)})`
    return at(path, message.endsWith(got) && said.startsWith('from ') ? `${message.slice(0, -1)} ${said})` : `${message} (${said})`, where)
  }
}

/** `got "abc" from "${PORT}"`; `from "${URL}"` when the message shows the value or it is a file path (`file`); a secret's variables only. */
function source (path: KeyPath, from: Interpolation, message: string, file: boolean): string | undefined {
  const keys = path.filter(k => typeof k === 'string')
  // A URL mistyped (`http:/user:pw@h`, `user:pw@h`, `:pw@h`) is no URL to redactSecrets: its userinfo is hidden all the same.
  const hidden = (text: string): string => {
    const shown = shownAt(keys, text)
    return shown !== REDACTED && shown.includes('@') ? hideUrlSecrets(shown) : shown
  }
  const value = hidden(from.value)
  if (value === REDACTED) {
    const names = [...from.written.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map(m => m[1] as string)
    return names.length === 0 ? undefined : `from the variable${names.length === 1 ? '' : 's'} ${names.join(', ')}`
  }
  const said = file || message.split(/[\s"',;:()]+/).includes(value) || message.includes(shown(value))
  return `${said ? '' : `got ${shown(value)} `}from ${shown(hidden(from.written))}`
}

/**
 * A top-level key misspelt where the key it is near is absent (`upstream:`), read as that key: the
 * rest of the file is checked as meant, not left unchecked behind a missing section. Each is an
 * issue; `at` then places and names the key's problems where it is written. Keys: meant, written.
 */
function readMisspelt (data: unknown, issues: ConfigIssue[], at: At): { meant: Map<string, string>, at: At } {
  const meant = new Map<string, string>()
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { meant, at }
  const root = data as Record<string, unknown>
  const known = Object.keys(schema.properties)
  for (const key of Object.keys(root)) {
    if (known.includes(key)) continue
    const near = nearest(key, known)
    if (near === undefined || Object.hasOwn(root, near)) continue
    root[near] = root[key]
    delete root[key]
    meant.set(near, key)
    issues.push(at([key], `unknown key ${quoteKey(key)}${didYouMean(key, [near])}`, 'key'))
  }
  if (meant.size === 0) return { meant, at }
  return { meant, at: (path, message, where) => at(asWritten(meant, path), message, where) }
}

/** `path` with its first key as written in the file (readMisspelt). */
function asWritten (meant: ReadonlyMap<string, string>, path: KeyPath): KeyPath {
  const written = meant.get(String(path[0]))
  return written === undefined ? path : [written, ...path.slice(1)]
}

/**
 * The rest of parseConfig, from the config as data; `issues` are those found so far, `warnings` interpolation's, `interpolated` its values,
 * `doc` the document it was read from (for hints on how a value was written), `known` what `placed` shows paths with.
 */
async function fromData (plain: unknown, text: string, file: string, issues: ConfigIssue[], placed: At, warnings: readonly ConfigIssue[],
  interpolated: ReadonlyMap<string, Interpolation> = new Map(), doc?: Document, known?: KnownKeys): Promise<LoadedConfig> {
  const { meant, at } = readMisspelt(plain, issues, placed)
  // A problem's path as `at` shows it: one at a path already reported is left out.
  const unsetAt = (path: KeyPath): string => formatPath(asWritten(meant, path), known)
  const written: Written = path => doc?.getIn(asWritten(meant, path), true)
  const data = plain as { admin?: { token?: unknown, readToken?: unknown } } | null
  // `token: "${ADMIN_TOKEN:-}"`: no token while the variable is unset (a non-loopback admin still requires one).
  if (data?.admin?.token === '') delete data.admin.token
  if (data?.admin?.readToken === '') delete data.admin.readToken
  // Ajv's type coercion would quietly read an empty value as 0, false or "": make it an error.
  for (const path of emptyValues(data, [])) issues.push(at(path, 'has no value'))
  await turn()
  const problems = validateSchema(schema, data)
  const builtins = await builtinPlugins()
  // A value left empty by a missing variable is already reported; its schema error would only repeat it.
  const unset = new Set(issues.map(i => i.path))
  issues.push(...problems.filter(p => !unset.has(unsetAt(p.path))).map(p => at(p.path, hinted(p, data, builtins, interpolated, written), p.at)))
  // So that every problem is reported at once, the semantic checks still run where the schema
  // found only unknown keys (the shape is sound) or problems inside one route, one upstream, one
  // loadPlugins entry (not loaded), or a section they do not read (those parts are left out of
  // them); not when the whole is malformed, or loadPlugins is not a list (no plugin could be known).
  const unsound: Unsound = { routes: new Set(), upstreams: new Set(), admin: false, sections: new Set() }
  const unloadable = new Set<number>()
  for (const p of problems) {
    if (p.unknownKey === true) continue
    const [section, part] = p.path
    if (section === 'routes' && typeof part === 'number') unsound.routes.add(part)
    else if (section === 'upstreams' && typeof part === 'string') unsound.upstreams.add(part)
    else if (section === 'loadPlugins' && typeof part === 'number') unloadable.add(part)
    else if (section === 'admin') unsound.admin = true
    else if (section === 'stores' || section === 'consumers' || section === 'plugins') unsound.sections.add(section)
    else if (section !== 'server' && section !== 'logging' && section !== 'metrics') throw new ConfigError(mergeDedentedKeys(issues, text), hiddenValues(data))
  }

  const config = data as GatewayConfig
  const plugins = new Map(builtins)
  const base = dirname(resolve(file))
  const stalePlugins: string[] = []
  const loadedFrom = new Map<string, number>()
  // loadPlugins entries not loaded: the plugins they define are unknown for that reason alone.
  const failed: Array<{ i: number, rel: string }> = []
  for (const [i, rel] of (config.loadPlugins ?? []).entries()) {
    if (unloadable.has(i)) { failed.push({ i, rel: String(rel) }); continue }
    try {
      const path = resolve(base, rel)
      const def = await importPlugin(pathToFileURL(path).href, importUserModule)
      if (changedSinceImport(path)) stalePlugins.push(rel)
      if (builtins.has(def.name)) issues.push(at(['loadPlugins', i], `plugin "${def.name}" is already defined: it is the name of a built-in plugin; give yours another`))
      else if (plugins.has(def.name)) issues.push(at(['loadPlugins', i], `plugin "${def.name}" is already defined, by loadPlugins[${loadedFrom.get(def.name)}]`))
      else { plugins.set(def.name, def); loadedFrom.set(def.name, i) }
    } catch (err) {
      // A module may throw anything at its top level (null, a string).
      issues.push(at(['loadPlugins', i], `cannot load plugin "${rel}": ${describeThrown(err)}`))
      failed.push({ i, rel })
    }
  }
  // Nor would a plugin schema's or check's at that value (a key left empty is also "too short").
  await turn()
  issues.push(...checkConfig(config, plugins, base, unsound).filter(p => !unset.has(unsetAt(p.path)))
    .flatMap(p => withFailedPlugins(p, failed)).map((p: SchemaProblem) => at(p.path, hinted(p, data, plugins, interpolated, written), p.at)))
  const upstreamTlsOptions = new Map<string, ConnectionOptions>()
  for (const [name, u] of Object.entries(config.upstreams)) {
    if (unsound.upstreams.has(name) || u?.tls === undefined) continue
    const options = upstreamTls(u.tls, base, (key, message) => issues.push(at(['upstreams', name, 'tls', key], message)))
    if (options !== undefined) upstreamTlsOptions.set(name, options)
  }
  // The server section may be malformed (null, even): its schema problems are already reported.
  const tls = (config.server as typeof config.server | null)?.tls
  const serverTls = tls === undefined || problems.some(p => p.path[0] === 'server') ? undefined : ServerTls.load(tls, base, (path, message) => issues.push(at(path, message)))
  // A check may quote a value it does not know to be secret (a plugin's own): the config's are hidden, as in a build failure.
  if (issues.length > 0) throw new ConfigError(mergeDedentedKeys(issues, text), hiddenValues(data))
  const found = [...warnings, ...routeWarnings(config).map(w => at(w.path, w.message, w.at)), ...upstreamWarnings(config.upstreams).map(w => at(w.path, w.message, w.at)), ...pluginWarnings(config, plugins).map(w => at(w.path, w.message, 'key'))]
  // Hidden as problems are: a plugin's warning may quote its config's secret.
  const all = found.length === 0 ? found : hiddenIn(found, hiddenValues(config))

  return { file, config, plugins, hash: configHash(text), text, loadedAt: new Date(), upstreamTls: upstreamTlsOptions, serverTls, stalePlugins, warnings: all }
}

/** The document's node at a config path (a YAML node, or undefined without a document). */
type Written = (path: KeyPath) => unknown

/**
 * A problem's message, with how to write what was likely meant: a list written as one value
 * (`methods: GET`: write [GET]; `routes:` as a map: start each route with -, `-name:`: a space after
 * the -), a comma missing in [ ] (`[GET POST]`), a plugin written beside a route's keys (they go under
 * plugins:), a target as its URL alone, a listen as its port alone; one from ${VAR}s (`interpolated`)
 * as written, its value being what the variable holds.
 */
function hinted (p: SchemaProblem, data: unknown, plugins: ReadonlyMap<string, unknown>, interpolated: ReadonlyMap<string, Interpolation>, written: Written): string {
  const key = p.path[p.path.length - 1]
  if (p.unknownKey === true && p.meant === undefined && typeof key === 'string' && plugins.has(key) &&
    (p.path.length === 1 || (p.path.length === 3 && p.path[0] === 'routes'))) {
    return `${p.message} (${key} is a plugin: plugins go under plugins:, as plugins: { ${key}: ... })`
  }
  const value = p.path.reduce<unknown>((node, k) => (node as Record<string | number, unknown> | null | undefined)?.[k], data)
  if (p.message === 'must be an object') {
    const [section, , list] = p.path
    const written = interpolated.get(formatPath(p.path))?.written
    if (section === 'upstreams' && list === 'targets' && p.path.length === 4 && typeof value === 'string') {
      // A user or password in the URL is never sent: the next error would say so.
      const credentials = hideUserinfo(value) === value ? '' : ' (without its user and password, which would not be sent: set an Authorization header with the request-headers plugin instead)'
      return `${p.message}: write { url: ${JSON.stringify(hideUrlSecrets(written ?? value))} }${credentials}`
    }
    const port = (typeof value === 'number' || typeof value === 'string') && /^\d+$/.test(String(value)) ? Number(value) : NaN
    if (key === 'listen' && port <= 65535) return `${p.message}: write { port: ${written === undefined ? port : JSON.stringify(written)} }`
    return p.message
  }
  const comma = missingComma(p.path, value, written)
  if (comma !== undefined) return `${p.message}: ${comma}`
  if (p.message !== 'must be an array') return p.message
  // `-name: r`: a map whose key holds the item's "-".
  const dashed = typeof value === 'object' && value !== null ? Object.keys(value).find(k => /^-[A-Za-z0-9_]/.test(k)) : undefined
  if (dashed !== undefined) return `${p.message}: a space is missing after the "-" of "${dashed}": write - ${dashed.slice(1)}: (YAML reads ${dashed} as one key)`
  if (p.path.length === 1 && key === 'routes' && typeof value === 'object') return `${p.message}: start each route with "- ", as in "- name: api" (its match: and upstream: indented under name:)`
  if (typeof value === 'object') return `${p.message}: start each item with "- ", or put the value inside [ ]`
  // Never a secret's value (a key-auth `keys: abc...` written as one key).
  const text = String(value)
  const quotable = text.length <= 40 && !/[\s,[\]{}#]/.test(text) && !hiddenAt(p.path.filter(k => typeof k === 'string'))
  return `${p.message}: write ${quotable ? `[${text}]` : 'the value inside [ ]'}`
}

/**
 * `methods: [GET POST]`: an item of words written plain in [ ], each an HTTP method or each a
 * number, is items a "," is missing between. Not said of other words: one may be a value with a space.
 */
function missingComma (path: KeyPath, value: unknown, written: Written): string | undefined {
  if (typeof value !== 'string' || typeof path[path.length - 1] !== 'number') return undefined
  const words = value.split(/\s+/)
  if (words.length < 2 || !(words.every(w => METHODS.includes(w.toUpperCase())) || words.every(w => /^\d+$/.test(w)))) return undefined
  const list = written(path.slice(0, -1))
  const item = written(path)
  if (!isSeq(list) || !list.flow || !isScalar(item) || item.type !== 'PLAIN') return undefined
  return `"${value}" is read as one item: a "," is missing between its words in [ ]: write ${words.join(', ')}`
}

/**
 * An unknown plugin's problem, where loadPlugins entries failed to load: none when an entry's path
 * names it (./add-tenant/index.ts defines add-tenant), else one saying they may define it.
 */
function withFailedPlugins (p: SchemaProblem, failed: ReadonlyArray<{ i: number, rel: string }>): SchemaProblem[] {
  const name = p.unknownPlugin
  if (name === undefined || failed.length === 0) return [p]
  if (failed.some(f => f.rel.split(/[\\/]/).some(part => part.replace(/\.[cm]?[jt]s$/, '') === name))) return []
  const entries = failed.map(f => `loadPlugins[${f.i}]`).join(', ')
  return [{ ...p, message: `unknown plugin "${name}": ${entries} failed to load (above), and may be what defines it` }]
}

/** Paths of null values, except a plugin's (`cors:` alone means "with defaults"), on a route or at the top level. */
function emptyValues (node: unknown, path: Array<string | number>): KeyPath[] {
  if (node === null) return (path.length === 4 && path[0] === 'routes' && path[2] === 'plugins') || (path.length === 2 && path[0] === 'plugins') ? [] : [path]
  if (typeof node !== 'object') return []
  return Object.entries(node).flatMap(([k, v]) => emptyValues(v, [...path, Array.isArray(node) ? Number(k) : k]))
}
