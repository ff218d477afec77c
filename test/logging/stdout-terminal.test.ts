import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { Pool, request } from 'undici'
import { CLI_FROM_SOURCES, ROOT } from '../helpers/run-cli.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml } from '../reload/helpers.ts'

/** Access lines of about 8.6 KB (the header logged; more made readable): 700 of them are 6 MB, past the 4 MiB held. */
const REQUESTS = 700
const PAD = { 'x-pad': 'x'.repeat(8000) }
// Without tap's NODE_OPTIONS, as a process of its own.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))
const quoted = (arg: string): string => `'${arg.replaceAll("'", "'\\''")}'`
const parsed = (l: string): Record<string, unknown> | undefined => { try { return JSON.parse(l) as Record<string, unknown> } catch { return undefined } }

/** Whether process `pid` has ended: gone, or a zombie its parent (the stopped `script`) has not reaped. */
function ended (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true
  } catch {
    return true
  }
}

/**
 * The gateway CLI with `logging` (YAML), its stdout a terminal: a pty of `script`'s (util-linux,
 * in every Debian), which copies it to its own stdout, read here, and stops copying at SIGSTOP: the
 * terminal then takes nothing (Ctrl-S, an unread `docker run -t`). The shell says its pid, node's after exec.
 */
async function onTerminal (t: Test, logging: string) {
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  t.teardown(() => up.close())
  const cf = await configFile(gatewayYaml({ u: [up.url] }, '  - { name: r, match: { path: /* }, upstream: u }', `logging: ${logging}`))
  t.teardown(() => cf.remove())
  const command = `echo "pid $$"; exec ${[process.execPath, ...CLI_FROM_SOURCES, 'start', '-c', cf.file, '--no-watch'].map(quoted).join(' ')}`
  // stdin a pipe left open: script passes an end of its input on to the terminal.
  const terminal = spawn('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: ENV, stdio: ['pipe', 'pipe', 'inherit'] })
  const closed = once(terminal, 'close')
  let raw = ''
  ;(terminal.stdout as Readable).on('data', (c: Buffer) => { raw += c.toString() })
  // eslint-disable-next-line no-control-regex
  const text = () => raw.replace(/\r/g, '').replace(/\x1b\[[0-9;]*m/g, '')
  let pid = 0
  t.teardown(async () => {
    if (pid !== 0 && !ended(pid)) process.kill(pid, 'SIGKILL')
    terminal.kill('SIGCONT')
    terminal.kill('SIGKILL')
    await closed
  })
  // Its JSON line, or its readable lines.
  const listening = () => text().split('\n').map(parsed).find(l => l?.msg === 'gateway listening') ??
    /gateway listening\n {4}url: "(?<url>[^"]+)"[\s\S]*?admin: "(?<admin>[^"]+)"/.exec(text())?.groups
  t.ok(await until(() => listening() !== undefined, 60_000), 'started', { output: text().slice(-1000) })
  pid = Number(/^pid (\d+)$/m.exec(text())?.[1])
  const { url, admin } = listening() as { url: string, admin: string }
  return { pid, url, admin, text, stall: () => terminal.kill('SIGSTOP') }
}

/** With its terminal stalled: every request answered, /healthz, lines past 4 MiB dropped and counted, SIGTERM ends it. */
async function servesWhileStalled (t: Test, gw: Awaited<ReturnType<typeof onTerminal>>): Promise<void> {
  gw.stall()
  const pool = new Pool(gw.url, { connections: 16 })
  t.teardown(() => pool.close())
  let sent = 0
  const statuses: Array<number | string> = []
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (sent++ < REQUESTS) {
      try {
        const res = await pool.request({ path: '/r', method: 'GET', headers: PAD, headersTimeout: 5000, bodyTimeout: 5000 })
        await res.body.text()
        statuses.push(res.statusCode)
      } catch (err) {
        statuses.push((err as Error).message)
        return
      }
    }
  }))
  t.same(statuses.filter(s => s !== 200), [], `every request answered while the terminal takes nothing (${statuses.length})`)
  const metrics = await request(`${gw.admin}/metrics`, { headersTimeout: 5000 }).then(res => res.body.text()).catch((err: Error) => err.message)
  const dropped = Number(/^portcullis_log_lines_dropped_total (\d+)$/m.exec(metrics)?.[1])
  t.ok(dropped > 0 && dropped < REQUESTS, `/metrics answers: lines past the bound dropped and counted (${dropped})`)
  process.kill(gw.pid, 'SIGTERM')
  // The exit's write of the lines held gives up after 5 s.
  t.ok(await until(() => ended(gw.pid), 15_000), 'SIGTERM ends it, the terminal still taking nothing')
}

// Node makes a terminal's fd blocking: a terminal that took no output (docker run -t unread,
// Ctrl-S, a stalled SSH session) froze the gateway in a write, proxy, /healthz, /metrics and SIGTERM.
t.test('stdout a stalled terminal, JSON lines: the gateway serves on and exits', async t => {
  const gw = await onTerminal(t, '{ accessLog: true, headers: true, pretty: false }')
  t.match(gw.text(), /^\{"level":30,.*"msg":"gateway listening"/m, 'JSON lines')
  await servesWhileStalled(t, gw)
})

// Readable output went through pino's transport, a worker thread: a terminal that took nothing
// had it hold every line (360 MB in 20 s), none counted, and the process never exited.
t.test('stdout a stalled terminal, readable output by default: bounded and counted as JSON lines are, and it exits', async t => {
  const gw = await onTerminal(t, '{ accessLog: true, headers: true }')
  t.match(gw.text(), /^\[[\d:.]+\] INFO: gateway listening\n {4}url: "http/m, 'readable lines')
  t.notMatch(gw.text(), /^\{"level"/m, 'no JSON line')
  await servesWhileStalled(t, gw)
})

// pino-pretty took some 30 µs an access line on the gateway's thread (a field a line, each
// coloured): readable output cost 40% of the proxied throughput. An access line is one line now.
t.test('readable output: an access line on one line, what was asked and answered', async t => {
  const gw = await onTerminal(t, '{ accessLog: true }')
  const res = await request(`${gw.url}/some/path?token=secret`)
  await res.body.dump()
  t.ok(await until(() => /INFO: request GET/.test(gw.text()), 10_000), 'access line shown')
  const line = gw.text().split('\n').find(l => l.includes('INFO: request GET')) as string
  t.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request GET \/some\/path 200 [\d.]+ ms route=r requestId=\S+$/, line)
  t.notMatch(gw.text(), /secret/, 'the query left out')
  t.match(gw.text(), /^ {4}url: "http/m, 'other lines made readable whole')
})
