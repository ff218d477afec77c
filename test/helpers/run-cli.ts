import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface Run { code: number, stdout: string, stderr: string }

// Without tap's NODE_OPTIONS: the CLI runs as a process of its own, as a user would run it.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))

/**
 * Runs `node <args>` to completion and collects its output. `args` start with the script, e.g.
 * ['--import', 'tsx', 'src/cli/main.ts', 'validate'] or the compiled ['dist/src/cli/main.js', ...].
 */
export function runNode (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: options.cwd ?? ROOT, env: { ...ENV, ...options.env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') reject(err)
      else resolve({ code: err === null ? 0 : err.code as number, stdout, stderr })
    })
  })
}

/** The CLI from the sources (through tsx), from the repository root. */
export const runCli = (...args: string[]): Promise<Run> => runNode(['--import', 'tsx', 'src/cli/main.ts', ...args])
