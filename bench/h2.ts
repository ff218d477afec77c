import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cpuTime, startChild, stopChildren, type Child } from './children.ts'
import { createTestCa } from '../test/helpers/certs.ts'

// `npm run bench:h2`: the same plain route (1 KiB from the origin) through one gateway with TLS,
// over HTTP/1.1 and over HTTP/2, in alternating slices of the same run, driven by h2load
// (Debian nghttp2-client). Requests per second, mean latency and gateway CPU per request.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const PATH = '/items/42'
const CASES = [
  { name: 'HTTP/1.1 + TLS, 10 connections', args: ['--h1', '-c', '10'] },
  { name: 'HTTP/2, 10 connections x 1 stream', args: ['-c', '10', '-m', '1'] },
  { name: 'HTTP/2, 1 connection x 10 streams', args: ['-c', '1', '-m', '10'] },
  { name: 'HTTP/2, 10 connections x 10 streams', args: ['-c', '10', '-m', '10'] }
] as const

interface Totals { requests: number, seconds: number, latencyUsSum: number, cpuUs: number }

const run = promisify(execFile)
const UNIT_US: Record<string, number> = { us: 1, ms: 1_000, s: 1_000_000 }

/** One h2load slice: requests done, seconds, mean latency (µs). Throws on any failed request. */
async function h2load (url: string, args: readonly string[]): Promise<{ requests: number, seconds: number, meanUs: number }> {
  const { stdout } = await run('h2load', [...args, '-D', String(SECONDS), '--warm-up-time', '1', url], { maxBuffer: 1 << 20 })
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(stdout)
  const counts = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout)
  const latency = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b/.exec(stdout)
  if (finished === null || counts === null || latency === null) throw new Error(`cannot read h2load's output:\n${stdout}`)
  const [, ok, failed, errored, timeout] = counts.map(Number) as [number, number, number, number, number]
  if (failed + errored + timeout > 0) throw new Error(`${args.join(' ')}: ${failed} failed, ${errored} errored, ${timeout} timed out\n${stdout}`)
  return { requests: ok, seconds: Number(finished[1]), meanUs: Number(latency[1]) * (UNIT_US[latency[2] as string] as number) }
}

async function slice (gateway: Child, args: readonly string[], into: Totals): Promise<void> {
  const before = await cpuTime(gateway)
  const r = await h2load(gateway.url.replace('http:', 'https:') + PATH, args)
  into.cpuUs += await cpuTime(gateway) - before
  into.requests += r.requests
  into.seconds += r.seconds
  into.latencyUsSum += r.meanUs * r.requests
}

const cleanups: Array<() => void> = []
try {
  await run('h2load', ['--version']).catch(() => { throw new Error('h2load is missing: apt-get install nghttp2-client') })
  const ca = createTestCa('Portcullis bench CA', fn => cleanups.push(fn))
  ca.issue('server', 'DNS:localhost,IP:127.0.0.1')
  const upstream = await startChild('upstream', { env: { BENCH_SIZE: '1024' } })
  const gateway = await startChild('portcullis-h2', {
    env: { BENCH_TLS_DIR: join(ca.certFile, '..'), BENCH_UPSTREAM_PORTS: JSON.stringify(upstream.info.ports) }
  })
  const totals = CASES.map(() => ({ requests: 0, seconds: 0, latencyUsSum: 0, cpuUs: 0 }))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of CASES.entries()) await slice(gateway, c.args, totals[i] as Totals)
  }
  const base = totals[0] as Totals
  const rps = (t: Totals) => t.requests / t.seconds
  const cpu = (t: Totals) => t.cpuUs / t.requests
  console.log(`Node ${process.version}, h2load, ${ROUNDS} x ${SECONDS} s slices per case, alternating; 1 KiB response over TLS`)
  console.log('case                                   req/s  vs HTTP/1.1  mean latency  gateway CPU µs/req  vs HTTP/1.1')
  for (const [i, c] of CASES.entries()) {
    const t = totals[i] as Totals
    console.log(`${c.name.padEnd(36)} ${rps(t).toFixed(0).padStart(7)}  ${(rps(t) / rps(base)).toFixed(2).padStart(10)}  ${(t.latencyUsSum / t.requests / 1000).toFixed(2).padStart(9)} ms  ${cpu(t).toFixed(0).padStart(18)}  ${(cpu(t) / cpu(base)).toFixed(2).padStart(11)}`)
  }
} finally {
  await stopChildren()
  for (const fn of cleanups) fn()
}
