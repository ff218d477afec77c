import autocannon from 'autocannon'
import { execFileSync } from 'node:child_process'
import { createHistogram } from 'node:perf_hooks'
import { wrkSlice } from './wrk.ts'

/** What one slice of load on one target measured. */
export interface SliceResult {
  /** Completed requests, and per second. */
  requests: number
  rps: number
  /** Latency percentiles in ms (2xx responses only). */
  p50: number
  p99: number
  /** Bytes received per response, headers included: a check that every target sends the same thing. */
  bytesPerResponse: number
  /** Connection errors, timeouts and non-2xx answers: any is a bench failure. */
  failures: number
}

// `wrk --version` exits 1, so look for the program itself.
function hasWrk (): boolean {
  try { execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }); return true } catch { return false }
}

/**
 * The load generator: wrk when installed (apt-get install wrk), as it leaves more of this 2-core
 * machine to the targets; else autocannon. BENCH_LOADGEN=autocannon|wrk forces one.
 */
export const LOAD_GENERATOR = process.env.BENCH_LOADGEN ?? (hasWrk() ? 'wrk' : 'autocannon')

/** `headers` go with every request (an Authorization header for the auth bench). */
export function slice (url: string, seconds: number, connections: number, headers: Record<string, string> = {}): Promise<SliceResult> {
  return LOAD_GENERATOR === 'wrk' ? wrkSlice(url, seconds, connections, headers) : autocannonSlice(url, seconds, connections, headers)
}

/**
 * Runs autocannon against `url` for `seconds`. Latency is recorded here in microseconds from
 * autocannon's per-response timings, as its own histogram keeps whole milliseconds only.
 */
function autocannonSlice (url: string, seconds: number, connections: number, headers: Record<string, string>): Promise<SliceResult> {
  const latencyUs = createHistogram()
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, connections, duration: seconds, pipelining: 1, headers }, (err, r) => {
      if (err !== null && err !== undefined) { reject(err instanceof Error ? err : new Error(String(err))); return }
      const completed = r.requests.total
      resolve({
        requests: completed,
        rps: completed / r.duration,
        p50: latencyUs.percentile(50) / 1000,
        p99: latencyUs.percentile(99) / 1000,
        bytesPerResponse: completed === 0 ? 0 : r.throughput.total / completed,
        failures: r.errors + r.timeouts + r.non2xx
      })
    })
    instance.on('response', (_client, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) latencyUs.record(Math.max(1, Math.round(ms * 1000)))
    })
  })
}
