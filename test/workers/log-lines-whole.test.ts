import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { Pool } from 'undici'
import { CLI_FROM_SOURCES, ROOT } from '../helpers/run-cli.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile } from '../reload/helpers.ts'

/** Requests, 16 at a time, each with a 3,000-byte header: access lines of about 3.6 KB. */
const REQUESTS = 500
// Reads 4 KiB of stdin every 5 ms, onto its stdout: a log shipper slower than the gateway.
const READER = `const fs = require('node:fs'); const b = Buffer.alloc(4096); const s = new Int32Array(new SharedArrayBuffer(4))
for (let n; (n = fs.readSync(0, b)) > 0;) { fs.writeSync(1, b, 0, n); Atomics.wait(s, 0, 0, 5) }`

type Line = Record<string, unknown>
const parsed = (l: string): Line | undefined => { try { return JSON.parse(l) as Line } catch { return undefined } }

// Each write of a worker was 4 KiB or more (pino's buffer): a pipe keeps a write whole only up to
// PIPE_BUF (4 KiB), so when it was full, one worker's line was cut by the other's (19 lines in 4,000).
t.test('workers: log lines written into a full pipe by two workers stay whole (every line JSON); a longer one is cut to fit', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  t.teardown(() => up.close())
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
logging: { accessLog: true, headers: true }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: u }
`)
  t.teardown(() => cf.remove())
  // A real pipe (spawn's 'pipe' is a socket pair), read by a process of its own.
  const fifo = join(cf.dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const writeEnd = openSync(fifo, 'r+')
  const readEnd = openSync(fifo, 'r')
  const reader = spawn(process.execPath, ['-e', READER], { stdio: [readEnd, 'pipe', 'inherit'] })
  const gateway = spawn(process.execPath, [...CLI_FROM_SOURCES, 'start', '-c', cf.file, '--no-watch'], { cwd: ROOT, stdio: ['ignore', writeEnd, 'inherit'] })
  closeSync(writeEnd)
  closeSync(readEnd)
  const gatewayExited = once(gateway, 'exit')
  // Every process that holds the pipe gone (the workers too): the reader reads to its end and exits.
  const readerDone = once(reader, 'close')
  t.teardown(() => { gateway.kill('SIGKILL'); reader.kill('SIGKILL') })
  let text = ''
  ;(reader.stdout as Readable).on('data', (c: Buffer) => { text += c.toString() })

  let url: string | undefined
  t.ok(await until(() => (url = text.split('\n').map(parsed).find(l => l?.msg === 'gateway listening')?.url as string | undefined) !== undefined, 60_000), 'the cluster started')
  const pool = new Pool(new URL(url as string).origin, { connections: 16 })
  t.teardown(() => pool.close())
  const get = async (headers: Record<string, string>) => { await (await pool.request({ path: '/r', method: 'GET', headers })).body.text() }
  const pad = { 'x-pad': 'x'.repeat(3000) }
  let sent = 0
  await Promise.all(Array.from({ length: 16 }, async () => { while (sent++ < REQUESTS) await get(pad) }))
  // Lines longer than PIPE_BUF: one with a long header (cut), one with 300 short ones (cut to its main fields).
  await get({ 'x-long': 'y'.repeat(6000) })
  await get(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-h${i}`, 'z'])))
  gateway.kill('SIGTERM')
  await gatewayExited
  await readerDone

  const lines = text.split('\n').filter(l => l !== '')
  t.same(lines.filter(l => parsed(l) === undefined).slice(0, 3), [], 'every line is JSON')
  const access = lines.map(parsed).filter(l => l?.msg === 'request')
  t.equal(access.length, REQUESTS + 2, 'every request logged')
  t.same(lines.filter(l => Buffer.byteLength(l) >= 4096), [], 'every line, its newline included, fits in PIPE_BUF')
  t.match(access.find(l => (l?.reqHeaders as Line | undefined)?.['x-long'] !== undefined)?.reqHeaders, { 'x-long': /^y{1024}…\(\+4976 bytes\)$/ }, 'a line too long: its long string cut')
  const many = access.find(l => l?.truncated !== undefined)
  t.match(many, { level: 30, worker: Number, msg: 'request', truncated: Number, requestId: String, status: 200, method: 'GET', clientIp: String }, 'still too long: its own fields, who asked for what')
  t.equal(many?.reqHeaders, undefined, 'its headers left out')
})
