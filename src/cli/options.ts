import { existsSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ConfigError, formatIssue } from '../config/config-error.ts'
import { loadConfig, type LoadedConfig } from '../config/load.ts'
import { didYouMean } from '../config/suggest.ts'

const DEFAULT_CONFIG = 'config/gateway.yaml'

export interface CommandSpec {
  /** Options besides -c and --help. */
  readonly options?: ParseArgsConfig['options']
  /** How many words the command takes besides options (default none): more is a usage error. */
  readonly positionals?: number
  /** The default of -c FILE; false for a command that reads no config (then -c is no option of it). */
  readonly config?: string | false
  /** Lines of the help's options list before -c's, aligned as it is (names in 20 columns). */
  readonly optionsHelp?: string
}

/** Parses `-c FILE`, `--help` and positionals; prints help or a usage error itself (returns a number then). */
export function parseCommand (argv: string[], commandHelp: string, spec: CommandSpec = {}): { config: string, positionals: string[], values: Record<string, unknown> } | number {
  const config = spec.config ?? DEFAULT_CONFIG
  const list = [spec.optionsHelp, config === false ? undefined : `-c, --config FILE   the config file (default ${config})`].filter(l => l !== undefined)
  const help = list.length === 0 ? commandHelp : `${commandHelp}\n\n${list.join('\n')}`
  const options: ParseArgsConfig['options'] = { ...spec.options, ...(config === false ? {} : { config: { type: 'string', short: 'c', default: config } }), help: { type: 'boolean', short: 'h' } }
  let parsed
  try {
    parsed = parseArgs({ args: shortEquals(argv, options), allowPositionals: true, options })
  } catch (err) {
    console.error(`${usageError(err as Error & { code?: string }, argv, options)}\n\n${help}`)
    return 2
  }
  if (parsed.values.help === true) { console.log(help); return 0 }
  // A word too many was once ignored: `validate other.yaml` checked the default file and said "valid".
  const extra = parsed.positionals[spec.positionals ?? 0]
  if (extra !== undefined) {
    const hint = config !== false && (/\.(ya?ml|json)$/i.test(extra) || existsSync(extra)) ? ` (did you mean -c ${extra}?)` : ''
    console.error(`unexpected argument "${extra}"${hint}\n\n${help}`)
    return 2
  }
  return { config: parsed.values.config as string, positionals: parsed.positionals, values: parsed.values }
}

/**
 * What parseArgs refused, in our words: its text for an unknown option advises `--` (for a word
 * starting with a dash, which no command takes) and leaves a quote open.
 */
function usageError (err: Error & { code?: string }, argv: string[], options: ParseArgsConfig['options'] = {}): string {
  const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /^Unknown option '([^']*)'/.exec(err.message)?.[1] : undefined
  if (unknown === undefined) return err.message
  return `unknown option "${unknown}"${negationHint(unknown, argv, options) ?? (
    // A long one only: any one letter is as near to another.
    unknown.startsWith('--') ? didYouMean(unknown, Object.keys(options).map(name => `--${name}`)) : '')}`
}

/** For `--watch=false` where `--no-watch` is the option: the flag is on by default, and `--no-X` turns it off. */
function negationHint (unknown: string, argv: string[], options: ParseArgsConfig['options'] = {}): string | undefined {
  const negated = `no-${unknown.slice(2)}`
  if (!unknown.startsWith('--') || options[negated]?.type !== 'boolean') return undefined
  const value = argv.find(a => a.startsWith(`${unknown}=`))?.slice(unknown.length + 1)
  return value !== undefined && /^(false|no|off|0)$/i.test(value)
    ? ` (did you mean "--${negated}"?)`
    : ` (it is on by default; "--${negated}" turns it off)`
}

/**
 * `-c=FILE` read as `--config=FILE` is: parseArgs would take "=FILE" as the value (as in -cFILE), and
 * look for a file named so. For every short option that takes a value; not past `--`.
 */
function shortEquals (argv: string[], options: ParseArgsConfig['options'] = {}): string[] {
  const valued = new Set(Object.values(options).flatMap(o => o.type === 'string' && o.short !== undefined ? [o.short] : []))
  const end = argv.indexOf('--')
  return argv.flatMap((arg, i) => {
    const m = /^-(\w)=(.*)$/s.exec(arg)
    return m !== null && valued.has(m[1] as string) && (end === -1 || i < end) ? [`-${m[1] as string}`, m[2] as string] : [arg]
  })
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

/** Prints the warnings of a config that loaded (no routes, a path with a trailing slash...) to stderr, each as file:line:column warning: key.path: message. */
export function printWarnings (loaded: LoadedConfig): void {
  for (const w of loaded.warnings ?? []) console.error(formatIssue({ ...w, path: '', message: `warning: ${w.path === '' ? '' : `${w.path}: `}${w.message}` }))
}
