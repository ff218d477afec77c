#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { didYouMean } from '../config/suggest.ts'
import { holdStartupSignals } from '../server/signals.ts'
import './stdout.ts'

interface Command {
  summary: string
  load: () => Promise<{ run: (argv: string[]) => Promise<number> }>
  /** Serves until stopped: signals are held from the start (see holdStartupSignals). */
  serves?: true
}
// Each command's module is imported only when it runs: `validate` or `--help` need not load the server.
const COMMANDS: Record<string, Command> = {
  start: { summary: 'start the gateway', load: () => import('./commands/start.ts'), serves: true },
  validate: { summary: 'check a config file; exit 0 if valid, 1 if not', load: () => import('./commands/validate.ts') },
  routes: { summary: 'print the route table, in the order routes are tried', load: () => import('./commands/routes.ts') },
  explain: { summary: 'show which route, plugins and upstream a request would get', load: () => import('./commands/explain.ts') },
  schema: { summary: 'print the config file\'s JSON Schema (for editors)', load: () => import('./commands/schema.ts') },
  healthcheck: { summary: 'exit 0 if the gateway started here answers /healthz (admin listener) or, without one, accepts connections', load: () => import('./commands/healthcheck.ts') },
  plugin: { summary: 'plugin new NAME: write a plugin folder (schema, hooks, a test) to start from', load: () => import('./commands/plugin.ts') },
  'hash-password': { summary: 'print the scrypt hash of a password read from stdin (for basic-auth)', load: () => import('./commands/hash-password.ts') },
  demo: { summary: 'start two local demo services and the gateway in front of them', load: () => import('./commands/demo.ts'), serves: true }
}

const USAGE = `portcullis: a self-hosted API gateway

Usage: portcullis <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(15)}${c.summary}`).join('\n')}

Options:
  -c, --config FILE  the config file of start, validate, routes, explain and demo (its --help says the default);
                     of plugin new, the config whose loadPlugins line it prints
  -h, --help         this text (also: help); a command's options: portcullis help <command>,
                     or portcullis <command> --help
  -v, --version      print Portcullis's version (also: version)`

const args = process.argv.slice(2)
// `portcullis help start` is `portcullis start --help`, as git and npm read it.
const [name, ...rest] = args[0] === 'help' && args[1] !== undefined ? [args[1], '--help'] : args
if (name === undefined) {
  // A usage error, as a bad argument is: a script that forgot its command does not pass.
  console.error(`portcullis: no command given\n\n${USAGE}`)
  process.exitCode = 2
} else if (name === '--help' || name === '-h' || name === 'help') {
  console.log(USAGE)
} else if (name === '--version' || name === '-v' || name === 'version') {
  console.log(version())
} else {
  // Own keys only: `portcullis constructor` is an unknown command, not Object's constructor.
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (command === undefined) {
    console.error(`portcullis: ${name.startsWith('-') ? optionFirst(args) : `unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}`}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    // Not when a test runs this file in its own process: its signals and its exit are the test's.
    const main = isMain()
    // First thing: loading the server's modules alone takes a while.
    if (command.serves === true && main) holdStartupSignals()
    process.exitCode = await (await command.load()).run(rest)
    // A module that loadPlugins names may keep the event loop busy (a timer at its top level), as
    // may a reload abandoned by the stop (a plugin setup that hangs): a command that is done, a
    // stopped gateway included, exits once its output is written. Supervisors size their grace
    // period to server.shutdownTimeout. (The log's last lines are written on exit: see createLogger.)
    if (main) exitWhenFlushed(process.exitCode)
  }
}

/** `-c x.yaml validate`: options go after the command, as the usage says; the line that would do. */
function optionFirst (args: readonly string[]): string {
  const at = args.findIndex(a => Object.hasOwn(COMMANDS, a))
  const meant = at === -1 ? ['<command>', ...args.map(quoted)] : [args[at] as string, ...[...args.slice(0, at), ...args.slice(at + 1)].map(quoted)]
  return `options go after the command: portcullis ${meant.join(' ')}`
}

/** A word as a shell reads it back. */
function quoted (word: string): string {
  return /^[\w./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`
}

/** package.json's version: two folders up from src/cli/main.ts, three from dist/src/cli/main.js. */
function version (): string {
  const up = new URL(import.meta.url).pathname.endsWith('.ts') ? '../../package.json' : '../../../package.json'
  return (JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { version: string }).version
}

function isMain (): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === fileURLToPath(import.meta.url)
  } catch {
    return false
  }
}

function exitWhenFlushed (code: number): void {
  let pending = 2
  const written = () => { if (--pending === 0) process.exit(code) }
  process.stdout.write('', written)
  process.stderr.write('', written)
}
