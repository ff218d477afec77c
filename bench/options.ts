import { parseArgs } from 'node:util'

export interface BenchOptions {
  quick: boolean
  /** Seconds of load on each target before anything is measured. */
  warmup: number
  /** Seconds per measured slice. */
  slice: number
  /** Measured rounds (b c d c e f c j c g c h c i). */
  rounds: number
  /** A slice of the bare upstream every N rounds. */
  directEvery: number
  connections: number
  /** Response body bytes. */
  size: number
  /** Where Portcullis's log lines (access log included) go. */
  log: string
  /** When set, (b), (c) and (f) are CPU-profiled during the measured slices; profiles go to this folder. */
  profile: string | undefined
  /** The JSON report; quick runs write none unless asked. */
  out: string | undefined
  /** Only these cases are warmed up and measured (all when undefined). */
  cases: ReadonlySet<string> | undefined
}

// Each numeric option: flag, environment variable, full-run and --quick defaults, least value.
// All are integers: seconds too, as wrk takes whole seconds only.
const NUMBERS = {
  warmup: { env: 'BENCH_WARMUP', full: 8, quick: 3, min: 0 },
  slice: { env: 'BENCH_SLICE', full: 3, quick: 2, min: 1 },
  rounds: { env: 'BENCH_ROUNDS', full: 10, quick: 3, min: 1 },
  'direct-every': { env: 'BENCH_DIRECT_EVERY', full: 2, quick: 1, min: 1 },
  connections: { env: 'BENCH_CONNECTIONS', full: 50, quick: 50, min: 1 },
  size: { env: 'BENCH_SIZE', full: 1024, quick: 1024, min: 0 }
} as const

export const USAGE = `Usage: npm run bench -- [--quick] [--warmup S] [--slice S] [--rounds N] [--direct-every N]
       [--connections N] [--size BYTES] [--log FILE] [--profile DIR] [--out FILE] [--cases LIST]

Compares Portcullis (one target, three targets, reloading every 100 ms) with a bare
@fastify/http-proxy and with the upstream itself, each in its own process, by alternating short
slices of load (wrk when installed, else autocannon; BENCH_LOADGEN=wrk|autocannon forces one).
Every option can also be set in the environment:
${Object.entries(NUMBERS).map(([k, v]) => `  --${k.padEnd(13)} ${v.env.padEnd(19)} default ${v.full} (quick ${v.quick})`).join('\n')}
  --log           BENCH_LOG           default /dev/null (Portcullis log lines, access log on)
  --profile       BENCH_PROFILE       CPU-profile (b), (c) and (f) (after warm-up) into DIR
  --out           BENCH_OUT           default bench/results/latest.json (quick runs: none)
  --cases         BENCH_CASES         only these cases, by letter (e.g. c,f): for work on one case`

/** Reads argv and the environment; throws with a usage message on bad input. */
export function parseOptions (argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      log: { type: 'string' },
      profile: { type: 'string' },
      out: { type: 'string' },
      cases: { type: 'string' },
      ...Object.fromEntries(Object.keys(NUMBERS).map(k => [k, { type: 'string' as const }]))
    }
  })
  if (values.help === true) return 'help'
  const quick = values.quick === true || env.BENCH_QUICK === '1'
  const num = (key: keyof typeof NUMBERS): number => {
    const spec = NUMBERS[key]
    const raw = (values as Record<string, string | undefined>)[key] ?? env[spec.env]
    if (raw === undefined) return quick ? spec.quick : spec.full
    const n = Number(raw)
    if (raw.trim() === '' || !Number.isInteger(n) || n < spec.min) {
      throw new Error(`--${key} (${spec.env}) must be an integer >= ${spec.min}${key === 'warmup' || key === 'slice' ? ' (whole seconds, as wrk takes)' : ''}, got "${raw}"`)
    }
    return n
  }
  return {
    quick,
    warmup: num('warmup'),
    slice: num('slice'),
    rounds: num('rounds'),
    directEvery: num('direct-every'),
    connections: num('connections'),
    size: num('size'),
    log: values.log ?? env.BENCH_LOG ?? '/dev/null',
    profile: values.profile ?? env.BENCH_PROFILE,
    out: values.out ?? env.BENCH_OUT ?? (quick ? undefined : 'bench/results/latest.json'),
    cases: caseList(values.cases ?? env.BENCH_CASES)
  }
}

const LETTERS = 'abcdefghij'

function caseList (raw: string | undefined): ReadonlySet<string> | undefined {
  if (raw === undefined) return undefined
  const letters = raw.split(',').map(c => c.trim().toLowerCase())
  const bad = letters.filter(c => c.length !== 1 || !LETTERS.includes(c))
  if (bad.length > 0 || letters.length === 0) throw new Error(`--cases (BENCH_CASES) must list case letters a-j separated by commas, got "${raw}"`)
  return new Set(letters)
}
