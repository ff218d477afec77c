import type { AddressInfo } from 'node:net'
import { basename } from 'node:path'
import { Profiler } from './profiler.ts'

/**
 * Tells the bench (over IPC) which port this target listens on (and `extra` facts), then obeys it: 'cpu' asks for
 * the CPU time used so far; 'profile' starts CPU profiling (when BENCH_PROFILE names a folder);
 * a signal, or the bench going away, stops the target after writing the profile.
 */
export function announce (address: AddressInfo | string | null, extra: Record<string, unknown> = {}): void {
  if (address === null || typeof address === 'string') throw new Error(`expected a TCP address, got ${String(address)}`)
  const dir = process.env.BENCH_PROFILE
  const profiler = new Profiler()
  const exit = () => {
    // Portcullis targets differ by config only: its name tells their profiles apart.
    const name = basename(process.argv[1] ?? 'target', '.ts') + (process.env.BENCH_CONFIG === undefined ? '' : `-${process.env.BENCH_CONFIG}`)
    const written = dir === undefined ? Promise.resolve() : profiler.stop(dir, name)
    written.then(() => process.exit(0), err => { console.error(err); process.exit(1) })
  }
  process.once('SIGTERM', exit)
  process.once('SIGINT', exit)
  process.once('disconnect', exit)
  process.on('message', msg => {
    if (msg === 'cpu') process.send?.({ cpu: process.cpuUsage() })
    else if (msg === 'profile' && dir !== undefined) void profiler.start()
  })
  process.send?.({ ...extra, port: address.port })
}
