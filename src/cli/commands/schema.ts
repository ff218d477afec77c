import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { schemaJson } from '../../config/emit-schema.ts'
import { parseCommand } from '../options.ts'

const HELP = `Usage: portcullis schema [--path]

Prints the JSON Schema of the config file (built-in plugins' configs included), for editors:
  portcullis schema > gateway.schema.json
and, as the config's first line:
  # yaml-language-server: $schema=./gateway.schema.json
--path prints where the package's own copy is instead (config/gateway.schema.json).`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { options: { path: { type: 'boolean' } }, config: false })
  if (typeof opts === 'number') return opts
  if (opts.values.path === true) {
    console.log(shippedSchemaPath())
    return 0
  }
  process.stdout.write(await schemaJson())
  return 0
}

/** config/gateway.schema.json of this package, whether running from src/ or from dist/src/. */
function shippedSchemaPath (): string {
  const candidates = ['../../../config/gateway.schema.json', '../../../../config/gateway.schema.json']
    .map(rel => fileURLToPath(new URL(rel, import.meta.url)))
  return candidates.find(f => existsSync(f)) ?? (candidates[0] as string)
}
