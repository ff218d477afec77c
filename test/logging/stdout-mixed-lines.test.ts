import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../helpers/run-cli.ts'

const LOADER = fileURLToPath(new URL('../helpers/typescript-loader.mjs', import.meta.url))
const LOGGER = new URL('../../src/logging/logger.ts', import.meta.url).href
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))

type Line = Record<string, unknown>

/** `script` run as a process of its own, its stdout `stdout` (fd 3: `extra`, if given); its stderr and exit code. */
async function run (t: Test, script: string, stdout: number, extra?: number): Promise<{ stderr: string, code: number | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-mixed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'script.mjs')
  writeFileSync(file, script)
  const child = spawn(process.execPath, ['--import', LOADER, file], {
    cwd: ROOT, env: ENV, stdio: ['ignore', stdout, 'pipe', ...(extra === undefined ? [] : [extra])], timeout: 20_000, killSignal: 'SIGKILL'
  })
  const stderr = text(child.stderr as Readable)
  const [code] = await once(child, 'exit') as [number | null]
  return { stderr: await stderr, code }
}

// A warning and an access line a request (an upstream failure storm, a plugin's line a request):
// each line went in a write of its own, weighty lines never sharing one with others (20,086 writes
// for 10,000 pairs, 531 for the access lines alone). /proc's count of the process's write calls.
const ALTERNATING = `const { createLogger } = await import(${JSON.stringify(LOGGER)})
const fs = await import('node:fs')
const log = createLogger({ pretty: false })
const writes = () => Number(/^syscw: (\\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))[1])
const before = writes()
for (let i = 0; i < 2000; i++) {
  log.warn({ route: 'r', requestId: 'id' + i }, 'upstream refused the connection')
  log.info({ route: 'r', path: '/' + i, status: 502 }, 'request')
}
log.flush()
process.stderr.write('writes ' + (writes() - before) + '\\n')`

t.test('warnings and access lines alternating: gathered into writes of many lines, in their order', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-mixed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'out.log')
  const fd = openSync(file, 'w')
  const { stderr, code } = await run(t, ALTERNATING, fd)
  closeSync(fd)
  t.equal(code, 0, `exit code 0 (${stderr})`)
  const lines = readFileSync(file, 'utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)
  t.same(lines.map(l => l.level).join(), Array(2000).fill('40,30').join(), 'every line, in the order logged')
  const writes = Number(/^writes (\d+)$/m.exec(stderr)?.[1])
  // Some 400 KB: about a hundred writes of 4 KiB.
  t.ok(writes > 0 && writes < 400, `${writes} writes for 4,000 lines`)
})

// Reads 4 KiB of stdin every 50 ms and passes it on: a log shipper slower than the lines held.
const SLOW_COPY = `const fs = require('node:fs'); const b = Buffer.alloc(4096); const s = new Int32Array(new SharedArrayBuffer(4))
for (let n; (n = fs.readSync(0, b)) > 0;) { fs.writeSync(1, b.subarray(0, n)); Atomics.wait(s, 0, 0, 50) }`
// 250 access lines of 20 KB, past the 4 MiB held: some dropped. Then the pipe (fd 3, its read end too)
// read quickly until some 150 KB of the lines held are left: the next line held (/after-0) follows
// the line saying how many were dropped. Then the shutdown's last line and a crash's fatal one.
const GAP_AND_CRASH = `const { createLogger, droppedLogLines } = await import(${JSON.stringify(LOGGER)})
const fs = await import('node:fs')
const log = createLogger({ pretty: false })
const pad = 'x'.repeat(20_000)
let bytes = 0
for (let i = 0; i < 250; i++) {
  const before = droppedLogLines()
  log.info({ path: '/' + i, pad }, 'request')
  if (droppedLogLines() === before) bytes += 20_000
}
const b = Buffer.alloc(65536)
for (let read = 0; read < bytes - 150_000;) {
  try { read += fs.readSync(3, b) } catch { }
  await new Promise(resolve => setTimeout(resolve, 1))
}
for (let i = 0; i < 3; i++) log.info({ path: '/after-' + i }, 'request')
log.info('stopped')
log.fatal('crashed')
process.exit(1)`

// Gap lines were held as weighty ones: at an exit with a lagging reader, they went ahead of every
// access line held, away from the lines dropped.
t.test('a reader too slow at exit: the line saying how many were dropped keeps its place among the access lines', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-gap-order-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fifo = join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const writeEnd = openSync(fifo, 'r+')
  const readEnd = openSync(fifo, 'r')
  // The script's: non-blocking, as it reads what its own logger writes.
  const ownRead = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const reader = spawn(process.execPath, ['-e', SLOW_COPY], { stdio: [readEnd, 'pipe', 'inherit'] })
  t.teardown(() => reader.kill('SIGKILL'))
  closeSync(readEnd)
  const read = text(reader.stdout as Readable)
  const { code, stderr } = await run(t, GAP_AND_CRASH, writeEnd, ownRead)
  closeSync(writeEnd)
  closeSync(ownRead)
  t.equal(code, 1, `exit code 1 (${stderr})`)
  // Two readers took the pipe's bytes: some lines torn, those read last whole.
  const lines = (await read).split('\n').map(l => { try { return JSON.parse(l) as Line } catch { return undefined } }).filter(l => l !== undefined)
  const shown = lines.map(l => l.dropped !== undefined ? 'gap' : l.deferred !== undefined ? 'deferred' : l.path ?? l.msg)
  const gap = shown.indexOf('gap')
  const deferred = shown.indexOf('deferred')
  t.ok(deferred > 0 && shown[deferred - 2] === 'stopped' && shown[deferred - 1] === 'crashed', 'stopped and the fatal line first, then the line saying how many follow', { shown: shown.slice(-20) })
  t.ok(gap > deferred, 'the line saying how many were dropped after them, with the access lines', { shown: shown.slice(-20) })
  t.same(shown.slice(gap - 1), [`/${/^\/(\d+)$/.exec(String(shown[gap - 1]))?.[1]}`, 'gap', '/after-0', '/after-1', '/after-2'], 'between the last access line held before the drop and the first after it')
})
