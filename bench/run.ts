import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, resolve } from 'node:path'
import { cpuTime, startChild, stopChildren, type Child } from './children.ts'
import { checkTarget } from './check.ts'
import { LOAD_GENERATOR, slice } from './load.ts'
import { parseOptions, USAGE, type BenchOptions } from './options.ts'
import { formatReport, summarize, TARGETS, type Slice, type TargetName } from './report.ts'

const PATH = '/items/42'

/** Starts the upstream, then the three targets in front of (or being) it. */
async function startTargets (o: BenchOptions): Promise<Record<TargetName, Child>> {
  const env = { BENCH_SIZE: String(o.size) }
  const upstream = await startChild('upstream', { env })
  const logFd = openSync(o.log, 'w')
  try {
    const proxyEnv = { BENCH_UPSTREAM: upstream.url, ...(o.profile === undefined ? {} : { BENCH_PROFILE: resolve(o.profile) }) }
    const [proxy, portcullis] = await Promise.all([
      startChild('http-proxy', { env: proxyEnv }),
      startChild('portcullis', { env: proxyEnv, stdout: logFd })
    ])
    return { direct: upstream, 'http-proxy': proxy, portcullis }
  } finally {
    closeSync(logFd) // the child holds its own copy
  }
}

function describe (s: Slice): string {
  return `${s.target} ${Math.round(s.rps)} req/s p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms cpu ${Math.round(s.cpuUsPerRequest)} µs/req`
}

/** One slice of load on a target, with the CPU time the target spent on it. */
async function measure (target: TargetName, child: Child, o: BenchOptions, seconds: number): Promise<Slice> {
  const cpuBefore = await cpuTime(child)
  const s = await slice(child.url + PATH, seconds, o.connections)
  const cpu = await cpuTime(child) - cpuBefore
  if (s.failures > 0) throw new Error(`${target}: ${s.failures} failed requests (errors, timeouts or non-2xx) in one slice`)
  return { target, ...s, cpuUsPerRequest: cpu / s.requests }
}

/**
 * The measured sequence: http-proxy and portcullis strictly alternate (b c b c ... b) so that every
 * portcullis slice has an http-proxy slice on each side; a bare-upstream slice goes in every few pairs.
 */
function schedule (o: BenchOptions): TargetName[] {
  const order: TargetName[] = []
  for (let i = 0; i < o.pairs; i++) {
    order.push('http-proxy', 'portcullis')
    if (i < o.pairs - 1 && (i + 1) % o.directEvery === 0) order.push('direct')
  }
  order.push('http-proxy')
  return order
}

async function bench (o: BenchOptions): Promise<void> {
  const loadBefore = loadavg()[0] ?? NaN
  const targets = await startTargets(o)
  for (const [name, child] of Object.entries(targets)) await checkTarget(name, child.url + PATH, o.size)
  for (const [name, child] of Object.entries(targets) as Array<[TargetName, Child]>) {
    console.log(`warming up ${TARGETS[name]} for ${o.warmup} s`)
    if (o.warmup > 0) console.log(`  ${describe(await measure(name, child, o, o.warmup))}`)
  }
  if (o.profile !== undefined) for (const child of [targets['http-proxy'], targets.portcullis]) child.process.send('profile')
  const order = schedule(o)
  const slices: Slice[] = []
  for (const [i, target] of order.entries()) {
    const s = await measure(target, targets[target], o, o.slice)
    slices.push(s)
    console.log(`slice ${i + 1}/${order.length}: ${describe(s)}`)
  }
  await stopChildren()
  const report = summarize(o, slices, loadBefore)
  console.log('\n' + formatReport(report))
  console.log(`\nLoad generator: ${LOAD_GENERATOR}. Portcullis access log: on, written to ${o.log}.`)
  if (o.profile !== undefined) console.log(`CPU profiles of both proxies (measured slices only) written to ${o.profile} (profiling slows them: figures are not comparable with normal runs).`)
  if (o.out !== undefined) {
    mkdirSync(dirname(o.out), { recursive: true })
    writeFileSync(o.out, JSON.stringify(report, null, 2) + '\n')
    console.log(`Results written to ${o.out}.`)
  }
}

let options: BenchOptions | 'help'
try {
  options = parseOptions(process.argv.slice(2), process.env)
} catch (err) {
  console.error(`${(err as Error).message}\n\n${USAGE}`)
  process.exit(2)
}
if (options === 'help') {
  console.log(USAGE)
} else {
  process.once('SIGINT', () => { void stopChildren().finally(() => process.exit(130)) })
  try {
    await bench(options)
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`)
    process.exitCode = 1
  } finally {
    await stopChildren()
  }
}
