import { rmSync, writeFileSync } from 'node:fs'

/** What `portcullis healthcheck` reads: this process, where its gateway listens, and its admin listener if any. */
export interface StateFile { pid: number, url: string, adminUrl?: string }

/**
 * Writes PORTCULLIS_STATE_FILE (when set) once the gateway listens, and removes it at exit, so a
 * container health check can find the gateway whatever ports the user's config chose. A file that
 * cannot be written (a read-only file system) is said on stderr: the gateway serves without it.
 */
export function writeStateFile (url: string, adminUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.PORTCULLIS_STATE_FILE
  if (file === undefined || file === '') return
  const state: StateFile = { pid: process.pid, url, ...(adminUrl === undefined ? {} : { adminUrl }) }
  try {
    writeFileSync(file, JSON.stringify(state) + '\n')
  } catch (err) {
    console.error(`portcullis: cannot write PORTCULLIS_STATE_FILE (${(err as Error).message}); \`portcullis healthcheck\` will not find this gateway`)
    return
  }
  process.once('exit', () => { rmSync(file, { force: true }) })
}
