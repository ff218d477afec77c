import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync } from 'node:fs'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../helpers/run-cli.ts'
import { stalledPipe } from '../helpers/stalled-pipe.ts'
import { until } from '../helpers/wait.ts'

const LOADER = fileURLToPath(new URL('../helpers/typescript-loader.mjs', import.meta.url))
const LOGGER = new URL('../../src/logging/logger.ts', import.meta.url).href
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))
// 6 MB of access lines, past the 4 MiB held while the reader is stopped; then nothing, until stdin ends.
const SCRIPT = `const { createLogger } = await import(${JSON.stringify(LOGGER)})
const log = createLogger({ pretty: false })
const pad = 'x'.repeat(1000)
for (let i = 0; i < 6000; i++) log.info({ path: '/r', pad }, 'request')
process.stderr.write('logged\\n')
process.stdin.on('end', () => process.exit(0)).resume()`

type Line = Record<string, unknown>

// The line saying how many lines were dropped was held only before the next line logged: a quiet
// gateway (night, a gateway taken out of rotation) showed its reader no sign of the hole.
t.test('lines dropped while the reader stalled, then none logged: the line saying so follows once the reader has caught up', async t => {
  // A real pipe, read by cat, stopped (SIGSTOP) while the lines are logged.
  const { writeEnd, text, resume } = stalledPipe(t, 'pc-gap-')
  const child = spawn(process.execPath, ['--import', LOADER, '--input-type=module', '-e', SCRIPT],
    { cwd: ROOT, env: ENV, stdio: ['pipe', writeEnd, 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' })
  closeSync(writeEnd)
  const exited = once(child, 'exit')
  t.teardown(() => child.kill('SIGKILL'))
  let stderr = ''
  ;(child.stderr as Readable).on('data', (c: Buffer) => { stderr += c.toString() })
  t.ok(await until(() => stderr.includes('logged'), 30_000), 'logged', { stderr })
  resume()
  // Whole lines only: a read may end within one.
  const lines = () => text().slice(0, text().lastIndexOf('\n')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)
  t.ok(await until(() => lines().some(l => l.dropped !== undefined), 5_000), 'the gap line written, no line logged since')
  const all = lines()
  const access = all.filter(l => l.msg === 'request').length
  t.ok(access > 3000 && access < 6000, `the access lines held written first (${access})`)
  t.match(all.slice(access), [{ level: 40, dropped: 6000 - access, msg: `${6000 - access} log lines dropped: stdout's reader fell more than 4 MiB of them behind (portcullis_log_lines_dropped_total)` }],
    'then the gap line, last')
  ;(child.stdin as NodeJS.WritableStream).end()
  t.same(await exited, [0, null])
})
