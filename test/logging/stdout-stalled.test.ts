import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { Pool, request } from 'undici'
import { CLI_FROM_SOURCES, ROOT } from '../helpers/run-cli.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml } from '../reload/helpers.ts'

/** Access lines of about 8.6 KB (the header logged): 700 of them are 6 MB, past the 4 MiB held. */
const REQUESTS = 700
const PAD = { 'x-pad': 'x'.repeat(8000) }
const MAX_HELD = 4 * 1024 * 1024
/** What the pipe (64 KiB) and cat (a read of 128 KiB, stopped before its write) may hold besides. */
const SLACK = 256 * 1024

type Line = Record<string, unknown>
const parsed = (l: string): Line | undefined => { try { return JSON.parse(l) as Line } catch { return undefined } }

// stdout was written synchronously, and sonic-boom retried a full pipe's EAGAIN every 100 ms in a
// sleep: a log reader that stopped reading froze the whole gateway, proxy, admin API and /healthz.
t.test('a stdout reader that stops reading: the gateway serves on, drops and counts lines past 4 MiB, and resumes', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  t.teardown(() => up.close())
  const cf = await configFile(gatewayYaml({ u: [up.url] }, '  - { name: r, match: { path: /* }, upstream: u }', 'logging: { accessLog: true, headers: true }'))
  t.teardown(() => cf.remove())
  // A real pipe (spawn's 'pipe' is a socket pair), read by cat, which is stopped (SIGSTOP) and continued.
  const fifo = join(cf.dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const writeEnd = openSync(fifo, 'r+')
  const readEnd = openSync(fifo, 'r')
  const reader = spawn('cat', [], { stdio: [readEnd, 'pipe', 'inherit'] })
  const gateway = spawn(process.execPath, [...CLI_FROM_SOURCES, 'start', '-c', cf.file, '--no-watch'], { cwd: ROOT, stdio: ['ignore', writeEnd, 'inherit'] })
  closeSync(writeEnd)
  closeSync(readEnd)
  const gatewayExited = once(gateway, 'exit')
  t.teardown(async () => {
    reader.kill('SIGCONT')
    gateway.kill('SIGTERM')
    const timer = setTimeout(() => { gateway.kill('SIGKILL') }, 15_000)
    await gatewayExited
    clearTimeout(timer)
  })
  let text = ''
  ;(reader.stdout as Readable).on('data', (c: Buffer) => { text += c.toString() })
  const lines = () => text.split('\n').filter(l => l !== '')

  let ready: Line | undefined
  t.ok(await until(() => (ready = lines().map(parsed).find(l => l?.msg === 'gateway listening')) !== undefined, 60_000), 'started')
  const { url, admin } = ready as { url: string, admin: string }
  const before = text.length
  reader.kill('SIGSTOP')

  const pool = new Pool(url, { connections: 16 })
  t.teardown(() => pool.close())
  const get = async (path: string) => {
    const res = await pool.request({ path, method: 'GET', headers: PAD, headersTimeout: 5000, bodyTimeout: 5000 })
    await res.body.text()
    return res.statusCode
  }
  let sent = 0
  const statuses: number[] = []
  await Promise.all(Array.from({ length: 16 }, async () => { while (sent++ < REQUESTS) statuses.push(await get('/r')) }))
  t.equal(statuses.filter(s => s === 200).length, REQUESTS, 'every request answered while stdout takes nothing')
  const health = await request(`${admin}/healthz`, { headersTimeout: 5000 })
  t.equal(health.statusCode, 200, '/healthz answers')
  await health.body.dump()
  const dropped = async () => {
    const res = await request(`${admin}/metrics`, { headersTimeout: 5000 })
    return Number(/^portcullis_log_lines_dropped_total (\d+)$/m.exec(await res.body.text())?.[1])
  }
  const counted = await dropped()
  t.ok(counted > 0 && counted < REQUESTS, `lines past the bound dropped and counted (${counted})`)

  reader.kill('SIGCONT')
  t.ok(await until(() => lines().filter(l => parsed(l)?.path === '/r').length === REQUESTS - counted, 10_000), 'the lines held written once the reader reads')
  t.equal(await get('/after'), 200)
  t.ok(await until(() => lines().some(l => parsed(l)?.path === '/after'), 10_000), 'new lines written')
  const all = lines()
  t.same(all.filter(l => parsed(l) === undefined).slice(0, 3), [], 'every line whole')
  const gap = all.findIndex(l => parsed(l)?.dropped !== undefined)
  const notice = parsed(all[gap] as string)
  t.match(notice, { level: 40, pid: gateway.pid, dropped: counted, msg: `${counted} log lines dropped: stdout's reader fell more than 4 MiB of them behind (portcullis_log_lines_dropped_total)` },
    'a line where they were dropped says how many')
  const held = all.slice(0, gap).join('\n').length - before
  t.ok(held <= MAX_HELD + SLACK, `lines held meanwhile: at most 4 MiB (${held} bytes)`)
  const access = all.map(parsed).filter(l => l?.path === '/r')
  t.equal(access.length + counted, REQUESTS, 'every access line written or counted')
  t.equal(all.findIndex(l => parsed(l)?.path === '/after') > gap, true, 'the new lines after the notice')
  t.equal(await dropped(), counted, 'no line dropped since')
})

t.test('a stdout reader gone (EPIPE): the gateway serves on, counts every line dropped, and exits at once', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  t.teardown(() => up.close())
  const cf = await configFile(gatewayYaml({ u: [up.url] }, '  - { name: r, match: { path: /* }, upstream: u }', 'logging: { accessLog: true }'))
  t.teardown(() => cf.remove())
  // A pipe whose only reader is cat: opened write-only (a read end beside it, non-blocking, lets
  // that open return), then the blocking read end cat reads.
  const fifo = join(cf.dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const opening = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const writeEnd = openSync(fifo, 'w')
  const readEnd = openSync(fifo, 'r')
  closeSync(opening)
  const reader = spawn('cat', [], { stdio: [readEnd, 'pipe', 'inherit'] })
  const readerGone = once(reader, 'exit')
  const gateway = spawn(process.execPath, [...CLI_FROM_SOURCES, 'start', '-c', cf.file, '--no-watch'], { cwd: ROOT, stdio: ['ignore', writeEnd, 'inherit'] })
  closeSync(writeEnd)
  closeSync(readEnd)
  const gatewayExited = once(gateway, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(async () => {
    reader.kill('SIGKILL')
    gateway.kill('SIGKILL')
    await gatewayExited
  })
  let text = ''
  ;(reader.stdout as Readable).on('data', (c: Buffer) => { text += c.toString() })
  let ready: Line | undefined
  t.ok(await until(() => (ready = text.split('\n').map(parsed).find(l => l?.msg === 'gateway listening')) !== undefined, 60_000), 'started')
  const { url, admin } = ready as { url: string, admin: string }
  reader.kill('SIGKILL')
  await readerGone

  const statuses: number[] = []
  for (let i = 0; i < 50; i++) {
    const res = await request(`${url}/r`, { headersTimeout: 5000 })
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  t.same(statuses.filter(s => s !== 200), [], 'every request answered')
  const res = await request(`${admin}/metrics`, { headersTimeout: 5000 })
  const dropped = Number(/^portcullis_log_lines_dropped_total (\d+)$/m.exec(await res.body.text())?.[1])
  t.ok(dropped >= 50, `every access line dropped and counted (${dropped})`)
  const stopping = performance.now()
  gateway.kill('SIGTERM')
  t.same(await gatewayExited, [0, null], 'SIGTERM ends it')
  t.ok(performance.now() - stopping < 3_000, `at once: the lines held are given up (${Math.round(performance.now() - stopping)} ms)`)
})
