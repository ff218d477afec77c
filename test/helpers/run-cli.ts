import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { format } from 'node:util'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface Run { code: number, stdout: string, stderr: string }

// Without tap's NODE_OPTIONS: the CLI runs as a process of its own, as a user would run it.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))

/**
 * Runs `node <args>` to completion and collects its output. `args` start with the script, e.g.
 * [...CLI_FROM_SOURCES, 'validate'] or the compiled ['dist/src/cli/main.js', ...].
 * With `uid`, as that user (through setpriv), with only PATH and `env`: the test runner hooks every
 * node child into its own files, which another user cannot write.
 */
export function runNode (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, uid?: number } = {}): Promise<Run> {
  const [command, argv] = options.uid === undefined
    ? [process.execPath, args]
    : ['setpriv', [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', 'env', '-i', `PATH=${process.env.PATH ?? ''}`,
        ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v ?? ''}`), process.execPath, ...args]]
  return new Promise((resolve, reject) => {
    execFile(command, argv, { cwd: options.cwd ?? ROOT, env: { ...ENV, ...options.env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') reject(err)
      else resolve({ code: err === null ? 0 : err.code as number, stdout, stderr })
    })
  })
}

/** Node's arguments that run the CLI from the sources (with a TypeScript loader where Node needs one). */
export const CLI_FROM_SOURCES = ['--import', fileURLToPath(new URL('typescript-loader.mjs', import.meta.url)), 'src/cli/main.ts']

/** The CLI from the sources, from the repository root. */
export const runCli = (...args: string[]): Promise<Run> => runNode([...CLI_FROM_SOURCES, ...args])

let runs = 0
/**
 * Runs the CLI in this process, as the binary would (a new copy of main.ts, which reads process.argv
 * and sets process.exitCode), its console output captured: no process to start and no sources to
 * compile again, for commands that only print. One at a time: it swaps globals.
 */
export async function runCliHere (...args: string[]): Promise<Run> {
  const saved = { argv: process.argv, log: console.log, error: console.error, exitCode: process.exitCode }
  let stdout = ''
  let stderr = ''
  process.argv = [process.execPath, 'portcullis', ...args]
  console.log = (...a: unknown[]) => { stdout += format(...a) + '\n' }
  console.error = (...a: unknown[]) => { stderr += format(...a) + '\n' }
  process.exitCode = undefined
  try {
    await import(`../../src/cli/main.ts?run=${++runs}`)
    return { code: Number(process.exitCode ?? 0), stdout, stderr }
  } finally {
    process.argv = saved.argv
    console.log = saved.log
    console.error = saved.error
    process.exitCode = saved.exitCode
  }
}
