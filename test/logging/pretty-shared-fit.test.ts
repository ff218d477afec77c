import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../helpers/run-cli.ts'

const LOADER = fileURLToPath(new URL('../helpers/typescript-loader.mjs', import.meta.url))
const LOGGER = new URL('../../src/logging/logger.ts', import.meta.url).href
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))
// Readable output with stdout shared by workers: a long header, then a plugin's 400 fields.
const SCRIPT = `const { createLogger, shareStdout } = await import(${JSON.stringify(LOGGER)})
const log = createLogger({ pretty: true })
shareStdout()
log.info({ header: 'h'.repeat(10000) }, 'long')
log.warn({ ...Object.fromEntries(Array.from({ length: 400 }, (_, i) => ['k' + i, 'v' + i])), route: 'chatty' }, 'many fields')
log.info('short')`

// Readable output went through pino's transport, written by its worker thread as it came: in
// worker mode a line longer than PIPE_BUF could be spliced with another process's. It is made
// readable in the process now and cut to fit as JSON lines are.
t.test('readable output in worker mode: each line made to fit 4 KiB, as JSON lines are', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-pretty-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'out.log')
  const fd = openSync(file, 'w')
  const child = spawn(process.execPath, ['--import', LOADER, '--input-type=module', '-e', SCRIPT],
    { cwd: ROOT, env: ENV, stdio: ['ignore', fd, 'inherit'], timeout: 30_000, killSignal: 'SIGKILL' })
  closeSync(fd)
  t.same(await once(child, 'exit'), [0, null])
  const out = readFileSync(file, 'utf8')
  // Each line starts with its time, `[12:34:56.789]`; its fields follow on lines of their own.
  const lines = out.split(/^(?=\[[\d:.]+\] )/m)
  t.equal(lines.length, 3, 'three lines')
  t.same(lines.filter(l => Buffer.byteLength(l) > 4096).map(l => l.slice(0, 100)), [], 'each within 4 KiB')
  // eslint-disable-next-line no-control-regex
  const plain = lines.map(l => l.replace(/\x1b\[[0-9;]*m/g, ''))
  t.match(plain[0], /INFO: long\n {4}header: "h{1024}…\(\+8976 bytes\)"\n/, 'a long string cut')
  t.match(plain[1], /WARN: many fields\n[\s\S]*route: "chatty"[\s\S]*truncated: \d+/, 'a line of too many fields: its own kept')
  t.match(plain[2], /INFO: short\n$/)
})
