import { rmSync, writeFileSync } from 'node:fs'

/** What `portcullis healthcheck` reads: this process and where its gateway listens. */
export interface StateFile { pid: number, url: string }

/**
 * Writes PORTCULLIS_STATE_FILE (when set) once the gateway listens, and removes it at exit, so a
 * container health check can find the gateway whatever ports the user's config chose.
 */
export function writeStateFile (url: string, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.PORTCULLIS_STATE_FILE
  if (file === undefined || file === '') return
  const state: StateFile = { pid: process.pid, url }
  writeFileSync(file, JSON.stringify(state) + '\n')
  process.once('exit', () => { rmSync(file, { force: true }) })
}
