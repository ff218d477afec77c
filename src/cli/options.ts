import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ConfigError } from '../config/config-error.ts'
import { loadConfig, type LoadedConfig } from '../config/load.ts'

const DEFAULT_CONFIG = 'config/gateway.yaml'

/** Parses `-c FILE`, `--help` and positionals; prints help or a usage error itself (returns a number then). */
export function parseCommand (argv: string[], help: string, extra: ParseArgsConfig['options'] = {}, defaultConfig = DEFAULT_CONFIG): { config: string, positionals: string[], values: Record<string, unknown> } | number {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...extra, config: { type: 'string', short: 'c', default: defaultConfig }, help: { type: 'boolean', short: 'h' } }
    })
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${help}`)
    return 2
  }
  if (parsed.values.help === true) { console.log(help); return 0 }
  return { config: parsed.values.config as string, positionals: parsed.positionals, values: parsed.values }
}

/** Loads a config, printing every problem to stderr when it is invalid. */
export async function loadOrReport (file: string): Promise<LoadedConfig | undefined> {
  try {
    return await loadConfig(file)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(err.message)
    return undefined
  }
}
