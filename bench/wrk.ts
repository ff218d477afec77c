import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { SliceResult } from './load.ts'
import { pinned } from './pinning.ts'

const run = promisify(execFile)
const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }

function ms (text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '')
  return m === null ? NaN : Number(m[1]) * (UNIT_MS[m[2] as string] as number)
}

/** A failed wrk run, with what wrk said: its errors go to stdout (its usage) or stderr (a refused connection). */
function failed (err: Error & { cmd?: string, code?: number | string, stdout?: string, stderr?: string }): never {
  const said = [err.stderr, err.stdout].map(s => s?.trim() ?? '').filter(s => s !== '').join('\n')
  throw new Error(`wrk failed (${err.cmd ?? 'wrk'}, exit ${String(err.code)})${said === '' ? '' : `:\n${said}`}`, { cause: err })
}

/** One slice with wrk (one thread): far cheaper per request than autocannon, so it takes less CPU from the targets. */
export async function wrkSlice (url: string, seconds: number, connections: number, headers: Record<string, string> = {}): Promise<SliceResult> {
  const h = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
  const { stdout } = await run(...pinned('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...h, url], 'rest')).catch(failed)
  const requests = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(stdout)?.[1] ?? NaN)
  const took = /\d+ requests in ([\d.]+\w+)/.exec(stdout)?.[1]
  const read = /requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB) read/.exec(stdout)
  const bytes = read === null ? NaN : Number(read[1]) * ({ B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[read[2] as 'B'])
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0)
  return {
    requests,
    rps: requests / (ms(took) / 1000),
    p50: ms(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1]),
    p99: ms(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1]),
    bytesPerResponse: bytes / requests,
    failures: non2xx + (errors === null ? 0 : errors.slice(1).reduce((a, b) => a + Number(b), 0))
  }
}
