import { Worker } from 'node:worker_threads'
import type { WrittenScalar } from './written-text.ts'
import type { ConfigIssue } from './config-error.ts'

// Run from the sources (.ts, a worker inherits the loader flags) or from the build (.js).
const script = new URL(`./yaml-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url)

/**
 * The config as plain data, its numbers and booleans written otherwise than JavaScript would
 * (writtenScalars), and interpolation's warnings, placed (their `file` left for the caller).
 */
interface OffThread { data: unknown, written: WrittenScalar[], warnings: ConfigIssue[] }

/**
 * The config text as plain data (${VAR}s replaced), parsed in a worker thread: the parse of a large
 * config (thousands of routes) blocks for most of a second, and a reload would stall every request
 * in flight for it. Undefined where the text has a problem, or the worker failed: the caller parses
 * on its own thread then, which reports every problem at its line.
 */
export function plainDataOffThread (text: string, env: NodeJS.ProcessEnv): Promise<OffThread | undefined> {
  return new Promise(resolve => {
    let worker: Worker
    try {
      worker = new Worker(script, { workerData: { text, env: { ...env } } })
    } catch {
      resolve(undefined)
      return
    }
    const done = (result: OffThread | undefined): void => {
      resolve(result)
      void worker.terminate()
    }
    worker.once('message', (result: OffThread | undefined) => done(result))
    worker.once('error', () => done(undefined))
    // A worker ended without an answer (terminated, out of memory).
    worker.once('exit', () => done(undefined))
  })
}
