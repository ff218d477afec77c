// For tests, loaded with --import: in a cluster worker, holds the import of the CLI's start command
// while the file $PORTCULLIS_TEST_HOLD_IMPORT exists (main.ts's first statements have run by then),
// after creating `<that file>.<pid>` to say so. Loaded once more in the loader thread, as the hooks.
import { existsSync, writeFileSync } from 'node:fs'
import { register } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import { isMainThread } from 'node:worker_threads'

const hold = process.env.PORTCULLIS_TEST_HOLD_IMPORT
if (isMainThread && hold !== undefined && process.env.PORTCULLIS_WORKER_INDEX !== undefined) register(import.meta.url, { data: { hold, pid: process.pid } })

let at
export function initialize (data) { at = data }

export async function resolve (specifier, context, next) {
  if (at !== undefined && specifier.includes('commands/start')) {
    writeFileSync(`${at.hold}.${at.pid}`, '')
    while (existsSync(at.hold)) await sleep(20)
  }
  return next(specifier, context)
}
