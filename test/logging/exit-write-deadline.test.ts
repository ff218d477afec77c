import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../helpers/run-cli.ts'
import { until } from '../helpers/wait.ts'

const LOADER = fileURLToPath(new URL('../helpers/typescript-loader.mjs', import.meta.url))
const LOGGER = new URL('../../src/logging/logger.ts', import.meta.url).href
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))
// Reads 4 KiB of stdin every 100 ms, and drops it: a log shipper far slower than the lines held.
const TRICKLE = `const fs = require('node:fs'); const b = Buffer.alloc(4096); const s = new Int32Array(new SharedArrayBuffer(4))
while (fs.readSync(0, b) > 0) Atomics.wait(s, 0, 0, 100)`
// 3 MB of lines held (under the 4 MiB bound), then an exit: at 40 KB/s, a minute and more to write them all.
const LOG_AND_EXIT = `const { createLogger } = await import(${JSON.stringify(LOGGER)})
const log = createLogger({ pretty: false })
const pad = 'x'.repeat(1000)
for (let i = 0; i < 3000; i++) log.info({ pad }, 'request')
process.stderr.write('exiting\\n')
process.exit(0)`
// The same in a cluster worker, its primary exiting with it.
const IN_WORKER = `import cluster from 'node:cluster'
if (cluster.isPrimary) cluster.fork().on('exit', () => process.exit(0))
else {
${LOG_AND_EXIT}
}`

/** `script` (a file's text) run with its stdout a pipe read by TRICKLE: how long it took to exit after saying `exiting`. */
async function exitTime (t: Test, script: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-exit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'script.mjs')
  writeFileSync(file, script)
  const fifo = join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const writeEnd = openSync(fifo, 'r+')
  const readEnd = openSync(fifo, 'r')
  const reader = spawn(process.execPath, ['-e', TRICKLE], { stdio: [readEnd, 'ignore', 'inherit'] })
  t.teardown(() => reader.kill('SIGKILL'))
  closeSync(readEnd)
  // The timeout ends a process that would take the minute, with SIGKILL.
  const child = spawn(process.execPath, ['--import', LOADER, file], { cwd: ROOT, env: ENV, stdio: ['ignore', writeEnd, 'pipe'], timeout: 20_000, killSignal: 'SIGKILL' })
  closeSync(writeEnd)
  let stderr = ''
  let exiting = 0
  ;(child.stderr as Readable).on('data', (c: Buffer) => { stderr += c.toString(); if (exiting === 0 && stderr.includes('exiting')) exiting = performance.now() })
  const exited = once(child, 'exit')
  t.ok(await until(() => exiting !== 0, 15_000), `logged (stderr: ${stderr})`)
  await exited
  return performance.now() - exiting
}

// At exit, the lines held were written until the reader took none for 5 s: one reading slowly kept
// the process alive a minute after SIGTERM, and a worker's event loop blocked meanwhile, so the
// primary counted it unresponsive.
t.test('a reader too slow for the lines held: the process exits within 5 s', async t => {
  const ms = await exitTime(t, LOG_AND_EXIT)
  t.ok(ms >= 4_000 && ms < 7_000, `exited ${Math.round(ms)} ms after its last line`)
})

t.test('a worker exits within 2 s: under the 5 s of silence after which its primary counts it unresponsive', async t => {
  const ms = await exitTime(t, IN_WORKER)
  t.ok(ms >= 1_500 && ms < 3_500, `exited ${Math.round(ms)} ms after its last line`)
})

// Reads 4 KiB of stdin every 100 ms and passes it on: a log shipper far slower than the lines held.
const SLOW_COPY = `const fs = require('node:fs'); const b = Buffer.alloc(4096); const s = new Int32Array(new SharedArrayBuffer(4))
for (let n; (n = fs.readSync(0, b)) > 0;) { fs.writeSync(1, b.subarray(0, n)); Atomics.wait(s, 0, 0, 100) }`
// 3 MB of access lines held, then the shutdown's last line and a crash's fatal one.
const LOG_AND_CRASH = `const { createLogger } = await import(${JSON.stringify(LOGGER)})
const log = createLogger({ pretty: false })
const pad = 'x'.repeat(1000)
for (let i = 0; i < 3000; i++) log.info({ path: '/' + i, pad }, 'request')
log.info('stopped')
log.fatal('crashed')
process.exit(1)`

type Line = Record<string, unknown>

/** LOG_AND_CRASH run with its stdout `stdout`; its exit code. */
async function crash (t: Test, stdout: number): Promise<number | null> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-crash-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'script.mjs')
  writeFileSync(file, LOG_AND_CRASH)
  const child = spawn(process.execPath, ['--import', LOADER, file], { cwd: ROOT, env: ENV, stdio: ['ignore', stdout, 'inherit'], timeout: 20_000, killSignal: 'SIGKILL' })
  const [code] = await once(child, 'exit') as [number | null]
  return code
}

// At exit the lines held were written strictly in order: behind megabytes of access lines a slow
// reader could not take within the 5 s, a crash's fatal line and `stopped` were lost.
t.test('a reader too slow for the lines held at exit: warnings, errors and other info lines go first, then a line saying how many follow', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-order-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fifo = join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const writeEnd = openSync(fifo, 'r+')
  const readEnd = openSync(fifo, 'r')
  const reader = spawn(process.execPath, ['-e', SLOW_COPY], { stdio: [readEnd, 'pipe', 'inherit'] })
  t.teardown(() => reader.kill('SIGKILL'))
  closeSync(readEnd)
  const read = text(reader.stdout as Readable)
  const code = await crash(t, writeEnd)
  closeSync(writeEnd)
  t.equal(code, 1, 'exit code 1')
  const lines = (await read).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)
  const msgs = lines.map(l => l.msg)
  const stopped = msgs.indexOf('stopped')
  t.ok(stopped > 0 && msgs[stopped + 1] === 'crashed', 'stopped and the fatal line written, in their order')
  const before = msgs.slice(0, stopped).filter(m => m === 'request').length
  const notice = lines[stopped + 2] as Line
  t.match(notice, { level: 40, deferred: 3000 - before, msg: `${3000 - before} log lines held at exit follow (access lines, debug), logged before some of the lines above: stdout's reader is slower than the lines held, and what it has not taken 5 s after the exit began is lost` },
    'then a line saying how many access lines follow')
  const after = lines.slice(stopped + 3)
  t.ok(after.length > 0 && after.every((l, i) => l.path === `/${before + i}`), `then the access lines held, in their order, as the reader took them (${after.length})`)
})

t.test('stdout taking every write at exit: the lines in the order logged', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-order-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'out.log')
  const fd = openSync(file, 'w')
  t.equal(await crash(t, fd), 1, 'exit code 1')
  closeSync(fd)
  const msgs = readFileSync(file, 'utf8').split('\n').filter(l => l !== '').map(l => (JSON.parse(l) as Line).msg)
  t.equal(msgs.length, 3002, 'every line written')
  t.same(msgs.slice(-3), ['request', 'stopped', 'crashed'], 'no line saying some follow')
})
