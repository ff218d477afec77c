import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCommand } from '../options.ts'
import { pluginFiles } from '../scaffold/plugin-files.ts'

const HELP = `Usage: portcullis plugin new NAME [--dir DIR]

Writes DIR/NAME/ (DIR defaults to ./plugins) with a plugin to start from:
  index.ts        definePlugin({ name, priority, schema, setup }): the hooks
  schema.ts       its config schema (TypeBox), each field with a description and a default
  NAME.test.ts    a test that runs it through a real gateway in front of a real upstream
and prints how to load it (loadPlugins) and how to run its test.`

const NAME_RE = /^[a-z][a-z0-9-]*$/

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { dir: { type: 'string', default: 'plugins' } })
  if (typeof opts === 'number') return opts
  const [action, name] = opts.positionals
  if (action !== 'new' || name === undefined) { console.error(HELP); return 2 }
  if (!NAME_RE.test(name)) { console.error(`plugin name "${name}" must be lower-case letters, digits and dashes, starting with a letter`); return 2 }
  const dir = resolve(opts.values.dir as string, name)
  if (existsSync(dir)) { console.error(`${dir} already exists: nothing written`); return 1 }
  await mkdir(dir, { recursive: true })
  for (const [file, text] of Object.entries(pluginFiles(name))) await writeFile(join(dir, file), text)
  const hooks = fileURLToPath(new URL(`../../plugins/register-plugin-hooks.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url))
  console.log(`wrote ${dir}: index.ts, schema.ts, ${name}.test.ts

Load it from your config (the path is relative to the config file):
  loadPlugins: [./${join(opts.values.dir as string, name, 'index.ts')}]
and use it on a route:
  plugins:
    ${name}: { header: x-${name}, value: "on" }

Run its test:
  node --import ${hooks} --test ${join(dir, `${name}.test.ts`)}`)
  return 0
}
