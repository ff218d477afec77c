import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../helpers/run-cli.ts'
import { stalledPipe } from '../helpers/stalled-pipe.ts'
import { until } from '../helpers/wait.ts'

const LOADER = fileURLToPath(new URL('../helpers/typescript-loader.mjs', import.meta.url))
const LOGGER = new URL('../../src/logging/logger.ts', import.meta.url).href
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))

type Line = Record<string, unknown>
const parsed = (l: string): Line | undefined => { try { return JSON.parse(l) as Line } catch { return undefined } }

/** `body` run after a JSON logger `log` is made, its stdout `stdout` (an fd), stderr piped; its exit. */
function run (body: string, stdout: number) {
  const script = `const { createLogger } = await import(${JSON.stringify(LOGGER)})
const log = createLogger({ pretty: false })
${body}`
  const child = spawn(process.execPath, ['--import', LOADER, '--input-type=module', '-e', script],
    { cwd: ROOT, env: ENV, stdio: ['ignore', stdout, 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' })
  let stderr = ''
  ;(child.stderr as Readable).on('data', (c: Buffer) => { stderr += c.toString() })
  return { child, stderr: () => stderr, exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]> }
}

// Past 4 MiB held, every line was dropped whatever its level: after a reader's pause (a log shipper
// restarting) that took the access lines, a crash's fatal line and the shutdown's lines were lost,
// though the reader was back before the process had exited.
t.test('stdout stalled past 4 MiB of access lines: warnings, errors and other info lines are still held, within a reserve', async t => {
  // A real pipe, read by cat, stopped (SIGSTOP) until the lines are logged.
  const { writeEnd, text, resume, done: readerDone } = stalledPipe(t, 'pc-reserve-')
  // 6 MB of access lines (as AccessLog writes them, `"msg":"request"`) and 2,000 short ones (what
  // room they leave, less than a line of the shortest), then the shutdown's lines, 40 KB of other
  // info lines (a quarter of the reserve holds 16 of them), a warning, an error, a fatal line, and an access line again.
  const { child, stderr, exited } = run(`const pad = 'x'.repeat(1000)
for (let i = 0; i < 6000; i++) log.info({ path: '/r', pad }, 'request')
for (let i = 0; i < 2000; i++) log.info('request')
log.info({ inFlight: 0 }, 'shutting down')
log.info('stopped')
for (let i = 0; i < 40; i++) log.info({ pad }, 'chatter')
log.warn('a warning')
log.error('an error')
log.fatal('crashed')
log.info('request')
process.stderr.write('logged\\n')
process.exit(1)`, writeEnd)
  closeSync(writeEnd)
  t.teardown(() => child.kill('SIGKILL'))
  t.ok(await until(() => stderr().includes('logged'), 30_000), `logged (stderr: ${stderr()})`)
  // The process is exiting, writing what it holds: the reader is back in time.
  await new Promise(resolve => setTimeout(resolve, 500))
  resume()
  const [code] = await exited
  t.equal(code, 1)
  await readerDone
  const lines = text().split('\n').filter(l => l !== '').map(parsed)
  t.equal(lines.filter(l => l === undefined).length, 0, 'every line whole')
  const access = lines.filter(l => l?.msg === 'request').length
  const gaps = lines.filter(l => l?.dropped !== undefined) as Line[]
  const dropped = gaps.reduce((sum, l) => sum + (l.dropped as number), 0)
  t.ok(access > 3000 && access < 6000, `access lines held up to 4 MiB (${access})`)
  const chatter = lines.filter(l => l?.msg === 'chatter').length
  t.ok(chatter > 0 && chatter <= 16, `other info lines held in a quarter of the reserve (${chatter})`)
  t.equal(access + chatter + dropped, 8041, 'every line written or counted')
  t.match(gaps[0], { level: 40, msg: `${gaps[0]?.dropped as number} log lines dropped: stdout's reader fell more than 4 MiB of them behind (portcullis_log_lines_dropped_total)` })
  const msgs = lines.map(l => l?.msg)
  for (const msg of ['shutting down', 'stopped', 'a warning', 'an error', 'crashed']) t.ok(msgs.includes(msg), `${msg}: written`)
  t.ok(msgs.indexOf('crashed') > msgs.lastIndexOf('chatter'), 'in the order logged')
  // The reader lagging at exit, the weightier lines went first; the line saying so keeps its place, after the access lines held.
  t.match(lines.at(-1), { dropped: 1 }, 'the access line after them dropped: the reserve is not theirs')
})

// A line over 4 MiB alone was dropped, even with stdout a file taking every write, and its gap
// line said stdout had taken none.
t.test('a line longer than 4 MiB is cut to fit, not dropped', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-big-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'out.log')
  const fd = openSync(file, 'w')
  const { exited } = run(`log.info({ big: 'x'.repeat(5 * 1024 * 1024) }, 'big line')
log.info('after big')`, fd)
  closeSync(fd)
  const [code] = await exited
  t.equal(code, 0)
  const lines = readFileSync(file, 'utf8').split('\n').filter(l => l !== '').map(parsed)
  t.match(lines, [{ msg: 'big line', big: /^x{1024}…\(\+5241856 bytes\)$/ }, { msg: 'after big' }])
  t.equal(lines.length, 2, 'no line dropped')
})
