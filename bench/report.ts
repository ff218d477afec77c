import { LOAD_GENERATOR } from './load.ts'
import { cpus, loadavg } from 'node:os'
import type { SliceResult } from './load.ts'
import type { BenchOptions } from './options.ts'
import { median, spread, type Spread } from './stats.ts'

export const TARGETS = {
  direct: '(a) upstream direct',
  'http-proxy': '(b) @fastify/http-proxy',
  portcullis: '(c) portcullis',
  'three-targets': '(d) portcullis, 3 targets',
  reloading: '(e) portcullis, reloading',
  cached: '(f) portcullis, cache hit',
  'ratelimit-memory': '(g) portcullis, rate-limit in memory',
  'ratelimit-redis': '(h) portcullis, rate-limit on Redis',
  'no-metrics': '(i) portcullis, request metrics off',
  'node-http': '(j) node:http, a constant answer'
} as const
export type TargetName = keyof typeof TARGETS

/** One measured slice, in the order run. */
export interface Slice extends SliceResult {
  target: TargetName
  /** CPU time (user + system) the target process spent per request, µs. */
  cpuUsPerRequest: number
  /** Case (e): config reloads applied, and refused or failed, during the slice. */
  reloads?: { applied: number, failed: number }
}

export interface TargetSummary {
  label: string
  slices: number
  /** Requests per second over slices. */
  rps: Spread
  /** Medians over slices of each slice's latency percentile, ms. */
  p50: number
  p99: number
  cpuUsPerRequest: number
  bytesPerResponse: number
}

/** A ratio computed once per slice of one target against its neighbours (see `ratio`). */
export interface Ratio extends Spread { perPair: number[] }

/** Higher is better for both: throughput, and requests served per CPU second (efficiency). */
const throughput = (s: Slice) => s.rps
const efficiency = (s: Slice) => 1e6 / s.cpuUsPerRequest

export const GOAL = 1.5
/** A cache hit (no upstream round trip) against the plain proxied route (issue 11). */
export const CACHE_GOAL = 3
/** Throughput of a rate-limited route over the plain one (issue 10). */
export const RATE_LIMIT_GOALS = { memory: 0.95, redis: 0.8 } as const
/** The plain route with request metrics over the same without them (issue 8): metrics cost at most 5%. */
export const METRICS_GOAL = 0.95

/**
 * `metric` of `num` over `den`, one value per slice of `at` (one of the two): the other target's
 * value is the mean of its nearest slices before and after, which cancels a steady drift in
 * machine speed. Slices without a neighbour on both sides give no value.
 */
function ratio (slices: readonly Slice[], metric: (s: Slice) => number, num: TargetName, den: TargetName, at: TargetName): Ratio {
  const other = at === num ? den : num
  const perPair: number[] = []
  for (const [i, s] of slices.entries()) {
    if (s.target !== at) continue
    const before = slices.slice(0, i).findLast(x => x.target === other)
    const after = slices.slice(i + 1).find(x => x.target === other)
    if (before === undefined || after === undefined) continue
    const around = (metric(before) + metric(after)) / 2
    perPair.push(at === num ? metric(s) / around : around / metric(s))
  }
  return { ...spread(perPair), perPair }
}

/** `loadBefore`: the 1-minute load average before the bench started anything. */
export function summarize (options: BenchOptions, slices: Slice[], loadBefore: number) {
  const of = (name: TargetName) => slices.filter(s => s.target === name)
  const targets = Object.fromEntries(Object.entries(TARGETS).map(([name, label]) => {
    const own = of(name as TargetName)
    const summary: TargetSummary = {
      label,
      slices: own.length,
      rps: spread(own.map(s => s.rps)),
      p50: median(own.map(s => s.p50)),
      p99: median(own.map(s => s.p99)),
      cpuUsPerRequest: median(own.map(s => s.cpuUsPerRequest)),
      bytesPerResponse: median(own.map(s => s.bytesPerResponse))
    }
    return [name, summary]
  })) as Record<TargetName, TargetSummary>
  // Computed at the http-proxy slices: each has a portcullis slice on both sides in the schedule.
  const portcullisOverProxy = ratio(slices, throughput, 'portcullis', 'http-proxy', 'http-proxy')
  const reloading = of('reloading')
  return {
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    machine: {
      // Figures from different Node majors are not comparable: every report names its own.
      node: process.version,
      openssl: process.versions.openssl,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      // Other work on the machine skews throughput; the bench itself adds about 2-3.
      loadAverage: { before: loadBefore, after: loadavg()[0] ?? NaN }
    },
    options,
    loadGenerator: LOAD_GENERATOR,
    method: 'Each target in its own process (a Portcullis process per case, (c) to (i)), the load generator ' +
      '(wrk, else autocannon) driven by the bench process. After a warm-up of each target, slices run in rounds of ' +
      'b c d c e f c j c g c h c i (a bare-upstream slice every few rounds); (g) and (h) add a never-reached rate limit, in memory ' +
      'and on a local redis-server; (i) is (c) with request metrics off; during (e) the bench rewrites the config file (a new route and ' +
      'upstream each time) and POSTs /config/reload every 100 ms; (j) is a bare node:http server answering a constant, the ceiling of a cache hit. Each ratio compares one slice with the mean of the ' +
      'other target\'s slices just before and after it; the median of these per-pair ratios is reported.',
    targets,
    ratios: {
      portcullisOverProxy,
      portcullisOverDirect: ratio(slices, throughput, 'portcullis', 'direct', 'direct'),
      proxyOverDirect: ratio(slices, throughput, 'http-proxy', 'direct', 'direct'),
      threeTargetsOverOne: ratio(slices, throughput, 'three-targets', 'portcullis', 'three-targets'),
      reloadingOverSteady: ratio(slices, throughput, 'reloading', 'portcullis', 'reloading'),
      cachedOverPlain: ratio(slices, throughput, 'cached', 'portcullis', 'cached'),
      rateLimitMemoryOverPlain: ratio(slices, throughput, 'ratelimit-memory', 'portcullis', 'ratelimit-memory'),
      rateLimitRedisOverPlain: ratio(slices, throughput, 'ratelimit-redis', 'portcullis', 'ratelimit-redis'),
      metricsOverNone: ratio(slices, throughput, 'portcullis', 'no-metrics', 'no-metrics'),
      nodeHttpOverPlain: ratio(slices, throughput, 'node-http', 'portcullis', 'node-http'),
      cachedOverNodeHttp: ratio(slices, throughput, 'cached', 'node-http', 'cached')
    },
    /** Case (e): every slice had zero failed requests, or the bench stopped there. */
    reloads: {
      applied: reloading.reduce((n, s) => n + (s.reloads?.applied ?? 0), 0),
      failed: reloading.reduce((n, s) => n + (s.reloads?.failed ?? 0), 0),
      requests: reloading.reduce((n, s) => n + s.requests, 0),
      failedRequests: 0
    },
    /** Requests per CPU second: less sensitive than throughput to other load on the machine. */
    efficiencyRatios: {
      portcullisOverProxy: ratio(slices, efficiency, 'portcullis', 'http-proxy', 'http-proxy'),
      cachedOverPlain: ratio(slices, efficiency, 'cached', 'portcullis', 'cached'),
      rateLimitMemoryOverPlain: ratio(slices, efficiency, 'ratelimit-memory', 'portcullis', 'ratelimit-memory'),
      rateLimitRedisOverPlain: ratio(slices, efficiency, 'ratelimit-redis', 'portcullis', 'ratelimit-redis')
    },
    goal: { portcullisOverProxy: GOAL, met: portcullisOverProxy.median >= GOAL },
    slices
  }
}
export type Report = ReturnType<typeof summarize>

const n0 = (x: number) => Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a'
const n2 = (x: number) => Number.isFinite(x) ? x.toFixed(2) : 'n/a'

export function formatReport (report: Report): string {
  // Cases --cases left out have no slices: no row, no ratio.
  const rows = Object.values(report.targets).filter(t => t.slices > 0).map(t => [
    t.label, n0(t.rps.median), `${n0(t.rps.min)}-${n0(t.rps.max)}`, n2(t.p50), n2(t.p99), n0(t.cpuUsPerRequest), String(t.slices), n0(t.bytesPerResponse)
  ])
  const header = ['target', 'req/s', 'req/s range', 'p50 ms', 'p99 ms', 'cpu µs/req', 'slices', 'bytes/res']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  const line = (cells: string[]) => cells.map((c, i) => i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join('  ')
  const r = report.ratios
  const ratioLine = (label: string, x: Ratio, goal?: number) => x.perPair.length === 0 ? [] : [`  ${label.padEnd(34)} ${n2(x.median)}  (range ${n2(x.min)}-${n2(x.max)}, ${x.perPair.length} pairs)` +
    (goal === undefined ? '' : `  goal >= ${goal}: ${x.median >= goal ? 'met' : 'NOT met'}`)]
  const e = report.efficiencyRatios
  const o = report.options
  return [
    `Node ${report.machine.node}, ${o.connections} connections, ${o.size} B responses, ${o.slice} s slices, warm-up ${o.warmup} s (${report.mode}); ` +
      `load average ${n2(report.machine.loadAverage.before)} before, ${n2(report.machine.loadAverage.after)} after`,
    '',
    line(header),
    ...rows.map(line),
    '',
    'throughput ratios (median of per-pair ratios):',
    ...ratioLine('(c)/(b) portcullis / http-proxy', r.portcullisOverProxy, GOAL),
    ...ratioLine('(c)/(a) portcullis / direct', r.portcullisOverDirect),
    ...ratioLine('(b)/(a) http-proxy / direct', r.proxyOverDirect),
    ...ratioLine('(d)/(c) 3 targets / 1 target', r.threeTargetsOverOne),
    ...ratioLine('(e)/(c) reloading / steady', r.reloadingOverSteady),
    ...ratioLine('(f)/(c) cache hit / proxied', r.cachedOverPlain, CACHE_GOAL),
    ...ratioLine('(g)/(c) rate-limit memory / plain', r.rateLimitMemoryOverPlain, RATE_LIMIT_GOALS.memory),
    ...ratioLine('(h)/(c) rate-limit Redis / plain', r.rateLimitRedisOverPlain, RATE_LIMIT_GOALS.redis),
    ...ratioLine('(c)/(i) metrics on / off', r.metricsOverNone, METRICS_GOAL),
    // The ceiling of (f)/(c): what a Node server that does nothing but answer gets, against the plain route.
    ...ratioLine('(j)/(c) node:http constant / plain', r.nodeHttpOverPlain),
    ...ratioLine('(f)/(j) cache hit / node:http', r.cachedOverNodeHttp),
    ...(report.targets.reloading.slices === 0 ? [] : [`(e): ${n0(report.reloads.applied)} reloads applied (${report.reloads.failed} refused or failed) under ` +
      `${n0(report.reloads.requests)} requests, ${report.reloads.failedRequests} of them failed`]),
    'CPU efficiency ratios (requests per CPU second, median of per-pair ratios):',
    ...ratioLine('(c)/(b) portcullis / http-proxy', e.portcullisOverProxy),
    ...ratioLine('(f)/(c) cache hit / proxied', e.cachedOverPlain),
    ...ratioLine('(g)/(c) rate-limit memory / plain', e.rateLimitMemoryOverPlain),
    ...ratioLine('(h)/(c) rate-limit Redis / plain', e.rateLimitRedisOverPlain)
  ].join('\n')
}
