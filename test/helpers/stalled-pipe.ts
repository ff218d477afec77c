import type { Test } from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'

/** A stdout for a child process: a real pipe (a FIFO), read by cat, stopped (SIGSTOP) until `resume`. */
export interface StalledPipe {
  /** The pipe's write end, to hand to the child (close it here once the child has it). */
  readonly writeEnd: number
  /** What cat has read so far. */
  text (): string
  /** cat reads again. */
  resume (): void
  /** Resolves once cat has read to the end (every write end closed). */
  readonly done: Promise<unknown>
}

export function stalledPipe (t: Test, prefix: string): StalledPipe {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fifo = join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const writeEnd = openSync(fifo, 'r+')
  const readEnd = openSync(fifo, 'r')
  const reader: ChildProcess = spawn('cat', [], { stdio: [readEnd, 'pipe', 'inherit'] })
  closeSync(readEnd)
  reader.kill('SIGSTOP')
  t.teardown(() => { reader.kill('SIGCONT'); reader.kill('SIGKILL') })
  let text = ''
  ;(reader.stdout as Readable).on('data', (c: Buffer) => { text += c.toString() })
  return { writeEnd, text: () => text, resume: () => { reader.kill('SIGCONT') }, done: once(reader, 'close') }
}
