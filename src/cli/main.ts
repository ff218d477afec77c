#!/usr/bin/env node
import { didYouMean } from '../config/suggest.ts'
import * as start from './commands/start.ts'
import * as validate from './commands/validate.ts'
import * as routes from './commands/routes.ts'
import * as explain from './commands/explain.ts'
import * as demo from './commands/demo.ts'

interface Command { summary: string, run: (argv: string[]) => Promise<number> }
const COMMANDS: Record<string, Command> = { start, validate, routes, explain, demo }

const USAGE = `portcullis: a self-hosted API gateway

Usage: portcullis <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`).join('\n')}

Run "portcullis <command> --help" for a command's options.`

const [name, ...rest] = process.argv.slice(2)
if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
  console.log(USAGE)
} else {
  const command = COMMANDS[name]
  if (command === undefined) {
    console.error(`portcullis: unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    process.exitCode = await command.run(rest)
  }
}
