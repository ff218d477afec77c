#!/usr/bin/env node
import { didYouMean } from '../config/suggest.ts'
import './stdout.ts'

interface Command { summary: string, load: () => Promise<{ run: (argv: string[]) => Promise<number> }> }
// Each command's module is imported only when it runs: `validate` or `--help` need not load the server.
const COMMANDS: Record<string, Command> = {
  start: { summary: 'start the gateway', load: () => import('./commands/start.ts') },
  validate: { summary: 'check a config file; exit 0 if valid, 1 if not', load: () => import('./commands/validate.ts') },
  routes: { summary: 'print the route table, in the order routes are tried', load: () => import('./commands/routes.ts') },
  explain: { summary: 'show which route, plugins and upstream a request would get', load: () => import('./commands/explain.ts') },
  schema: { summary: 'print the config file\'s JSON Schema (for editors)', load: () => import('./commands/schema.ts') },
  healthcheck: { summary: 'exit 0 if the gateway started here accepts connections (container health checks)', load: () => import('./commands/healthcheck.ts') },
  plugin: { summary: 'plugin new NAME: write a plugin folder (schema, hooks, a test) to start from', load: () => import('./commands/plugin.ts') },
  'hash-password': { summary: 'print the scrypt hash of a password read from stdin (for basic-auth)', load: () => import('./commands/hash-password.ts') },
  demo: { summary: 'start two local demo services and the gateway in front of them', load: () => import('./commands/demo.ts') }
}

const USAGE = `portcullis: a self-hosted API gateway

Usage: portcullis <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(15)}${c.summary}`).join('\n')}

Run "portcullis <command> --help" for a command's options.`

const [name, ...rest] = process.argv.slice(2)
if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
  console.log(USAGE)
} else {
  // Own keys only: `portcullis constructor` is an unknown command, not Object's constructor.
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (command === undefined) {
    console.error(`portcullis: unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    process.exitCode = await (await command.load()).run(rest)
  }
}
