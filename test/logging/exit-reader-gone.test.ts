import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { text } from 'node:stream/consumers'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../helpers/run-cli.ts'

const LOADER = fileURLToPath(new URL('../helpers/typescript-loader.mjs', import.meta.url))
const LOGGER = new URL('../../src/logging/logger.ts', import.meta.url).href
// Logs a line (buffered), then another once its stdin ends, and exits: both written by the exit flush.
const SCRIPT = `const { createLogger } = await import(${JSON.stringify(LOGGER)})
const log = createLogger({ pretty: false })
log.info('first')
process.stdin.on('end', () => log.info('last')).resume()`
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))

/** The script run with its stdout's reader gone (`readerGone`) or read; its exit, stdout and stderr. */
async function run (readerGone: boolean) {
  // The timeout ends a process that hangs, with SIGKILL.
  const child = spawn(process.execPath, ['--import', LOADER, '--input-type=module', '-e', SCRIPT],
    { cwd: ROOT, env: ENV, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000, killSignal: 'SIGKILL' })
  if (readerGone) child.stdout.destroy()
  const stdout = readerGone ? Promise.resolve('') : text(child.stdout)
  const stderr = text(child.stderr)
  child.stdin.end()
  const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
  return { code, signal, stdout: await stdout, stderr: await stderr }
}

// On exit, the buffered lines' flush (sonic-boom's flushSync) met EPIPE and retried it forever,
// 100 ms apart: a gateway whose stdout reader had gone (a log shipper's crash, `| head`) never exited.
t.test('a process whose stdout reader has gone exits, its last lines given up', async t => {
  const { code, signal, stderr } = await run(true)
  t.same({ code, signal }, { code: 0, signal: null }, `exits by itself (stderr: ${stderr})`)
})

t.test('with its reader there, the lines still buffered are written on exit', async t => {
  const { code, stdout } = await run(false)
  t.equal(code, 0)
  t.match(stdout.trim().split('\n').map(l => JSON.parse(l) as unknown), [{ msg: 'first' }, { msg: 'last' }])
})
