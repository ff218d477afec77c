import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { pin } from './pinning.ts'

/** A target server running in its own process (so it never shares the load generator's event loop). */
export interface Child {
  readonly name: string
  readonly url: string
  readonly process: ChildProcess
  /** What else the child announced (the upstream's ports, Portcullis's admin URL and config file). */
  readonly info: Record<string, unknown>
}

export interface ChildOptions {
  env?: Record<string, string>
  /** Where the child's stdout goes: 'ignore' is /dev/null, a number is an open file descriptor. */
  stdout?: 'ignore' | 'inherit' | number
}

// A loaded machine (other work, a load average of 20 or more) can take most of a minute to start a Node process.
const READY_TIMEOUT_MS = 90_000
const STOP_TIMEOUT_MS = 10_000
const running = new Set<ChildProcess>()

/**
 * Starts bench/targets/<name>.ts, compiled (`npm run build:bench`), and resolves once it has
 * announced its port. Compiled, not under tsx: the gateway runs as deployed, and tsx's loader
 * alone made the rate-limited case cost 8 µs more per request than the plain one, against 2 µs
 * compiled.
 */
export function startChild (name: string, options: ChildOptions = {}): Promise<Child> {
  const file = fileURLToPath(new URL(`../dist/bench/targets/${name}.js`, import.meta.url))
  const stdio: StdioOptions = ['ignore', options.stdout ?? 'ignore', 'inherit', 'ipc']
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, ...options.env },
    stdio
  })
  running.add(child)
  child.once('exit', () => running.delete(child))
  pin(child.pid, name === 'upstream' ? 'rest' : 'proxy')
  return new Promise((resolve, reject) => {
    const fail = (why: string) => { clearTimeout(timer); child.kill('SIGKILL'); reject(new Error(`${name}: ${why}`)) }
    const timer = setTimeout(() => fail(`not ready after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS)
    const early = (code: number | null, signal: string | null) => fail(`exited before it was ready (code ${String(code)}, signal ${String(signal)})`)
    child.once('exit', early)
    child.once('message', (msg: { port: number } & Record<string, unknown>) => {
      clearTimeout(timer)
      child.off('exit', early)
      resolve({ name, url: `http://127.0.0.1:${msg.port}`, process: child, info: msg })
    })
  })
}

/** Stops every child still running: SIGTERM (a clean exit), then SIGKILL if it lingers. */
export async function stopChildren (): Promise<void> {
  await Promise.all([...running].map(child => new Promise<void>(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGTERM')
  })))
}

/** CPU time (user + system, microseconds) the child has used so far, as it reports it. */
export function cpuTime (child: Child): Promise<number> {
  return new Promise(resolve => {
    const onMessage = (msg: { cpu?: NodeJS.CpuUsage }) => {
      if (msg.cpu === undefined) return
      child.process.off('message', onMessage)
      resolve(msg.cpu.user + msg.cpu.system)
    }
    child.process.on('message', onMessage)
    child.process.send('cpu')
  })
}
