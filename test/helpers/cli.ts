import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { CLI_FROM_SOURCES } from './run-cli.ts'

type Line = Record<string, unknown>

export interface CliProcess {
  readonly child: ChildProcess
  /** Every JSON log line written to stdout so far. */
  readonly lines: Line[]
  /** Whatever was written to stderr. */
  readonly stderr: () => string
  /** The first line (already written or still to come) that `match` accepts, or undefined after `maxMs`. */
  waitForLine (match: (l: Line) => boolean, maxMs?: number): Promise<Line | undefined>
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<number | string>
}

/**
 * Runs the real CLI (`src/cli/main.ts`, as `npx tsx` would) with `args`; it logs JSON
 * lines because stdout is not a terminal. The caller must see it exit (see `stopCli`).
 */
export function spawnCli (args: string[], env: NodeJS.ProcessEnv = {}, options: { uid?: number, wrapper?: string[] } = {}): CliProcess {
  return spawnNode([...CLI_FROM_SOURCES, ...args], env, options)
}

/**
 * Runs `node <nodeArgs>` from the repository root, reading its JSON log lines as spawnCli does.
 * With `uid`, as that user (through setpriv, which execs: the child is node itself), with only PATH
 * and `env` (see runNode); the sources it loads must have been compiled by then (their cache is not its to write).
 * With `wrapper`, through that command (`unshare ...`), which runs node in its turn.
 */
export function spawnNode (nodeArgs: string[], env: NodeJS.ProcessEnv = {}, options: { uid?: number, wrapper?: string[] } = {}): CliProcess {
  const [command, argv] = options.wrapper !== undefined
    ? [options.wrapper[0] as string, [...options.wrapper.slice(1), process.execPath, ...nodeArgs]]
    : options.uid === undefined
    ? [process.execPath, nodeArgs]
    : ['setpriv', [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', 'env', '-i', `PATH=${process.env.PATH ?? ''}`,
        ...Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`), process.execPath, ...nodeArgs]]
  const child = spawn(command, argv, {
    cwd: new URL('../..', import.meta.url),
    env: options.uid === undefined ? { ...process.env, ...env } : {},
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: Line[] = []
  const waiters = new Set<{ match: (l: Line) => boolean, resolve: (l: Line) => void }>()
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', text => {
    let line: Line
    try { line = JSON.parse(text) as Line } catch { line = { text } }
    lines.push(line)
    for (const w of waiters) if (w.match(line)) { waiters.delete(w); w.resolve(line) }
  })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string)
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitForLine (match, maxMs = 60_000) {
      const found = lines.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return new Promise(resolve => {
        const waiter = { match, resolve: (l: Line | undefined) => { clearTimeout(timer); resolve(l) } }
        const timer = setTimeout(() => { waiters.delete(waiter); resolve(undefined) }, maxMs)
        waiters.add(waiter)
      })
    }
  }
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code or signal. */
export async function stopCli (cli: CliProcess, graceMs = 15_000): Promise<number | string> {
  if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGTERM')
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), graceMs)
  try { return await cli.exited } finally { clearTimeout(timer) }
}
