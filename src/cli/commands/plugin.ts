import { existsSync, realpathSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCommand } from '../options.ts'
import { pluginFiles } from '../scaffold/plugin-files.ts'
import { BUILTIN_FOLDERS, builtinPlugins } from '../../plugins/registry.ts'
import { ConfigError } from '../../config/config-error.ts'
import { didYouMean } from '../../config/suggest.ts'

const HELP = `Usage: portcullis plugin new NAME [--dir DIR] [-c FILE]

Writes DIR/NAME/ (DIR defaults to ./plugins; not a clone's own plugins/, its built-ins) with a
TypeScript plugin to start from:
  index.ts        definePlugin({ name, priority, schema, setup }): the hooks
  schema.ts       its config schema (TypeBox), each field with a description and a default
  NAME.test.ts    a test that runs it through a real gateway in front of a real upstream
  package.json    { "type": "module" }: tsc (module NodeNext) compiles the folder's .ts as ES modules
and prints how to load it (loadPlugins: relative to FILE's folder, else to the current folder) and
how to run its test.`

const NAME_RE = /^[a-z][a-z0-9-]*$/
const FROM_SOURCE = import.meta.url.endsWith('.ts')
// What keeps the folder from being written, said as a user fixes it (the rest in Node's words).
const WRITE_ERRORS: Record<string, string> = {
  ENOTDIR: 'a part of that path is a file, not a folder (check --dir)',
  EACCES: 'permission denied',
  EROFS: 'the file system is read-only'
}

export async function run (argv: string[]): Promise<number> {
  // -c names the config only to print its loadPlugins path: none is read, so no default.
  const opts = parseCommand(argv, HELP, {
    options: { dir: { type: 'string', default: 'plugins' }, config: { type: 'string', short: 'c' } },
    optionsHelp: '--dir DIR           the folder to write NAME/ in (default plugins)\n-c, --config FILE   the config that will load it: the loadPlugins line is relative to its folder',
    positionals: 2,
    config: false
  })
  if (typeof opts === 'number') return opts
  const [action, name] = opts.positionals
  if (action !== 'new' || name === undefined) {
    const problem = action === undefined ? 'a subcommand is needed: new'
      : action !== 'new' ? `unknown subcommand "${action}"${didYouMean(action, ['new'])}` : 'plugin new needs a NAME'
    console.error(`${problem}\n\n${HELP}`)
    return 2
  }
  if (!NAME_RE.test(name)) { console.error(`plugin name "${name}" must be lower-case letters, digits and dashes, starting with a letter`); return 2 }
  const dirArg = opts.values.dir as string
  // Its plugins are the package's own: a plugin written there becomes a built-in at the next build
  // (loadPlugins then refuses it as one), and a half-written one fails every command.
  const builtinFolder = BUILTIN_FOLDERS.find(f => samePath(f, resolve(dirArg)))
  if (builtinFolder !== undefined) {
    console.error(`${builtinFolder} is Portcullis's own folder of built-in plugins, nothing written: ` +
      'write yours elsewhere with --dir, e.g. in a folder beside your config: --dir config/plugins -c config/gateway.yaml')
    return 2
  }
  let builtins
  try {
    builtins = await builtinPlugins()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(err.message)
    return 1
  }
  // loadPlugins would refuse it: a second plugin of that name.
  if (builtins.has(name)) { console.error(`plugin name "${name}" is a built-in plugin's: choose another`); return 2 }
  const dir = resolve(dirArg, name)
  if (existsSync(dir)) { console.error(`${dir} already exists: nothing written`); return 1 }
  const files = pluginFiles(name)
  try {
    await mkdir(dir, { recursive: true })
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === undefined) throw err
    console.error(`cannot write ${dir}: ${WRITE_ERRORS[code] ?? (err as Error).message}`)
    return 1
  }
  // loadPlugins resolves a relative path against the config's folder: an absolute --dir stays absolute.
  const configFile = opts.values.config as string | undefined
  const entry = isAbsolute(dirArg) ? join(dir, 'index.ts') : relative(configFile === undefined ? '.' : dirname(resolve(configFile)), join(dir, 'index.ts'))
  // Not an error: the plugin may come before its config (it is only the path the line is relative to).
  if (configFile !== undefined && !existsSync(configFile)) console.error(`note: ${configFile} does not exist (yet): the loadPlugins line below is for a config written there`)
  console.log(`wrote ${dir}: ${Object.keys(files).join(', ')}

Load it from ${configFile === undefined
    ? 'your config (a relative path is relative to the config file\'s folder; this one is\nfor a config in the current folder: -c FILE prints it for yours)'
    : `${configFile} (a relative path is relative to its folder)`}:
  loadPlugins: [${isAbsolute(entry) || entry.startsWith('../') ? entry : `./${entry}`}]
and use it on a route:
  plugins:
    ${name}: { header: x-${name}, value: "on" }

Run its test:
  node ${testImports().map(f => `--import ${f} `).join('')}--test ${join(dir, `${name}.test.ts`)}

Check its types with tsc (module NodeNext): its package.json, { "type": "module" }, makes the
folder's .ts files ES modules (the test uses import.meta); keep it.`)
  return 0
}

/** Whether two paths name one folder, through symbolic links (either may not exist). */
function samePath (a: string, b: string): boolean {
  const real = (p: string) => { try { return realpathSync(p) } catch { return resolve(p) } }
  return real(a) === real(b)
}

/**
 * What `node --import` needs to run the plugin's test: the hooks that resolve "portcullis" and load
 * .ts files; from the sources, first the repository's TypeScript loader, which loads those hooks' own .ts.
 */
function testImports (): string[] {
  const file = (rel: string) => fileURLToPath(new URL(rel, import.meta.url))
  return FROM_SOURCE
    ? [file('../../../test/helpers/typescript-loader.mjs'), file('../../plugins/register-plugin-hooks.ts')]
    : [file('../../plugins/register-plugin-hooks.js')]
}
