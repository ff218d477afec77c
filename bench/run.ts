import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { loadavg } from 'node:os'
import { dirname, resolve } from 'node:path'
import { cpuTime, startChild, stopChildren, type Child } from './children.ts'
import { checkTarget } from './check.ts'
import { LOAD_GENERATOR, slice } from './load.ts'
import { pin, PINNING_NOTE } from './pinning.ts'
import { parseOptions, USAGE, type BenchOptions } from './options.ts'
import { formatReport, summarize, TARGETS, type Slice, type TargetName } from './report.ts'
import { reloadingConfig } from './targets/portcullis-config.ts'
import { RedisProcess } from '../test/helpers/redis.ts'

const PATH = '/items/42'
/** The processes --profile profiles: the bare proxy, and Portcullis with the plain, cached and rate-limited routes. */
const PROFILED: readonly TargetName[] = ['http-proxy', 'portcullis']
const RELOAD_EVERY_MS = 100

/** Which process serves each case (those --cases left out are not started), and on which path. */
interface Targets { child: Partial<Record<TargetName, Child>>, path: Partial<Record<TargetName, string>>, upstreamPorts: number[] }

/** Cases served by routes of (c)'s process (see oneProcessConfig), by path prefix. */
const ROUTES: Partial<Record<TargetName, string>> = { cached: '/cached', 'ratelimit-memory': '/limited', 'ratelimit-redis': '/limited-redis' }

/** How each proxy case is started, given the upstream's environment and the log file. */
type Starter = (env: Record<string, string>, redis: RedisProcess | undefined, logFd: number) => Promise<Child>
const portcullis = (config: string): Starter =>
  (env, redis, logFd) => startChild('portcullis', { env: { ...env, BENCH_CONFIG: config, ...(redis === undefined ? {} : { BENCH_REDIS_URL: redis.url }) }, stdout: logFd })
const STARTERS: Partial<Record<TargetName, Starter>> = {
  'http-proxy': env => startChild('http-proxy', { env }),
  portcullis: portcullis('one-process'),
  'three-targets': portcullis('three-targets'),
  reloading: portcullis('reloading'),
  'no-metrics': portcullis('no-metrics'),
  'node-http': env => startChild('node-http', { env })
}

/** Starts the upstream, then the proxies in front of it (case (h)'s Redis is `redis`, started when (h) is measured). */
async function startTargets (o: BenchOptions, redis: RedisProcess | undefined): Promise<Targets> {
  const upstream = await startChild('upstream', { env: { BENCH_SIZE: String(o.size) } })
  const upstreamPorts = upstream.info.ports as number[]
  const logFd = openSync(o.log, 'w')
  try {
    const env = {
      BENCH_SIZE: String(o.size), // (j) answers with the upstream's body size
      BENCH_UPSTREAM: upstream.url,
      BENCH_UPSTREAM_PORTS: JSON.stringify(upstreamPorts),
      ...(o.profile === undefined ? {} : { BENCH_PROFILE: resolve(o.profile) })
    }
    const child: Targets['child'] = { direct: upstream }
    const path: Targets['path'] = {}
    // (c)'s process also serves the route cases: started when any of them is measured.
    const wanted = (name: TargetName) => selected(o, name) || (name === 'portcullis' && Object.keys(ROUTES).some(r => selected(o, r as TargetName)))
    const started = await Promise.all(Object.entries(STARTERS).filter(([name]) => wanted(name as TargetName))
      .map(async ([name, start]) => [name, await start(env, redis, logFd)] as const))
    for (const [name, c] of started) child[name as TargetName] = c
    for (const [name, prefix] of Object.entries(ROUTES)) {
      child[name as TargetName] = child.portcullis
      path[name as TargetName] = prefix
    }
    return { child, path, upstreamPorts }
  } finally {
    closeSync(logFd) // the child holds its own copy
  }
}

/**
 * Case (e): until `stop`, writes a new config (a new route and upstream) and asks for a reload
 * every RELOAD_EVERY_MS, as an operator's tooling would. Counts what was applied and what not.
 */
async function reloadLoop (t: Targets, stop: AbortSignal, generation: { n: number }): Promise<{ applied: number, failed: number }> {
  const counts = { applied: 0, failed: 0 }
  const { admin, configFile } = (t.child.reloading as Child).info as { admin: string, configFile: string }
  while (!stop.aborted) {
    await writeFile(configFile, reloadingConfig(t.upstreamPorts, ++generation.n))
    const res = await request(`${admin}/config/reload`, { method: 'POST' })
    const body = await res.body.json() as { result?: string }
    if (res.statusCode === 200 && body.result === 'success') counts.applied++
    else counts.failed++
    await sleep(RELOAD_EVERY_MS)
  }
  return counts
}

function describe (s: Slice): string {
  return `${s.target} ${Math.round(s.rps)} req/s p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms cpu ${Math.round(s.cpuUsPerRequest)} µs/req` +
    (s.reloads === undefined ? '' : `, ${s.reloads.applied} reloads`)
}

const generation = { n: 0 }

/** Case (h)'s Redis, while it runs. */
let redis: RedisProcess | undefined

/** Stops the targets, then Redis (the targets would log it gone). */
async function stopAll (): Promise<void> {
  await stopChildren()
  await redis?.stop()
  redis = undefined
}

/** One slice of load on a target, with the CPU time the target spent on it. */
async function measure (target: TargetName, t: Targets, o: BenchOptions, seconds: number): Promise<Slice> {
  const child = t.child[target] as Child
  const cpuBefore = await cpuTime(child)
  const stop = new AbortController()
  const reloading = target === 'reloading' ? reloadLoop(t, stop.signal, generation) : undefined
  const s = await slice(child.url + (t.path[target] ?? '') + PATH, seconds, o.connections)
  stop.abort()
  const reloads = await reloading
  const cpu = await cpuTime(child) - cpuBefore
  if (s.failures > 0) throw new Error(`${target}: ${s.failures} failed requests (errors, timeouts or non-2xx) in one slice`)
  return { target, ...s, cpuUsPerRequest: cpu / s.requests, ...(reloads === undefined ? {} : { reloads }) }
}

/**
 * The measured sequence, in rounds of b c d c e f c j c g c h c i, ending c b: every http-proxy slice and
 * every (d), (e), (g) to (j) slice has a plain-portcullis slice on each side ((f) follows one, and
 * has a (j) slice on each side across rounds); a bare-upstream slice goes in every few rounds.
 */
function schedule (o: BenchOptions): TargetName[] {
  const order = fullSchedule(o).filter(t => selected(o, t))
  // Narrowed to a few cases, the schedule can repeat a target: one slice stands for the run of them.
  return order.filter((t, i) => t !== order[i - 1])
}

/** --cases: whether the target's case is measured. */
const selected = (o: BenchOptions, t: TargetName) => o.cases === undefined || o.cases.has(TARGETS[t].charAt(1))

function fullSchedule (o: BenchOptions): TargetName[] {
  const order: TargetName[] = []
  for (let i = 0; i < o.rounds; i++) {
    order.push('http-proxy', 'portcullis', 'three-targets', 'portcullis', 'reloading', 'cached', 'portcullis', 'node-http', 'portcullis', 'ratelimit-memory', 'portcullis', 'ratelimit-redis', 'portcullis', 'no-metrics')
    if (i < o.rounds - 1 && (i + 1) % o.directEvery === 0) order.push('direct')
  }
  order.push('portcullis', 'http-proxy')
  return order
}

async function bench (o: BenchOptions): Promise<void> {
  const loadBefore = loadavg()[0] ?? NaN
  // This process runs autocannon (when wrk is missing) and the reload loop: never on the proxies' core.
  pin(process.pid, 'rest')
  const slices: Slice[] = []
  try {
    // Only (h) needs Redis: a run without it needs no redis-server.
    if (selected(o, 'ratelimit-redis')) {
      redis = await RedisProcess.start()
      pin(redis.pid, 'rest')
    }
    const targets = await startTargets(o, redis)
    const cases = (Object.keys(TARGETS) as TargetName[]).filter(t => selected(o, t))
    for (const name of cases) await checkTarget(name, (targets.child[name] as Child).url + (targets.path[name] ?? '') + PATH, o.size)
    for (const name of cases) {
      console.log(`warming up ${TARGETS[name]} for ${o.warmup} s`)
      if (o.warmup > 0) console.log(`  ${describe(await measure(name, targets, o, o.warmup))}`)
    }
    if (o.profile !== undefined) for (const name of PROFILED) targets.child[name]?.process.send('profile')
    const order = schedule(o)
    for (const [i, target] of order.entries()) {
      const s = await measure(target, targets, o, o.slice)
      slices.push(s)
      console.log(`slice ${i + 1}/${order.length}: ${describe(s)}`)
    }
  } finally {
    // Whatever failed: a child left running (Redis above all) would keep this process from exiting.
    await stopAll()
  }
  const report = summarize(o, slices, loadBefore)
  console.log('\n' + formatReport(report))
  console.log(`\nLoad generator: ${LOAD_GENERATOR}. Portcullis access log: on, written to ${o.log}. ${PINNING_NOTE}`)
  if (o.profile !== undefined) console.log(`CPU profiles of ${PROFILED.map(t => TARGETS[t]).join(', ')} (measured slices only) written to ${o.profile} (profiling slows them: figures are not comparable with normal runs).`)
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
  process.once('SIGINT', () => { void stopAll().finally(() => process.exit(130)) })
  try {
    await bench(options)
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`)
    process.exitCode = 1
  }
}
