import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

/**
 * CPU pinning (Linux taskset): the measured proxies share core 0, which nothing else uses; the
 * upstream, Redis, the load generator and this process use the other cores. Unpinned, the
 * scheduler moves the proxy between cores and next to the load generator from slice to slice,
 * which on a small machine changed a proxy's CPU per request by up to 2x between slices. The
 * proxies take turns (one is under load at a time), so each gets a core to itself, as in
 * "requests per core". BENCH_PIN=0 turns it off; it is off without taskset or with one core.
 */
const cores = availableParallelism()
const hasTaskset = (): boolean => {
  try { execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }); return true } catch { return false }
}
export const PINNING = process.env.BENCH_PIN !== '0' && cores >= 2 && hasTaskset()

/** The cores a role runs on, as taskset's list. */
const CORES = { proxy: '0', rest: cores === 2 ? '1' : `1-${cores - 1}` } as const

/** Pins a running process (all its threads) to its role's cores, when pinning is on. */
export function pin (pid: number | undefined, role: keyof typeof CORES): void {
  if (!PINNING || pid === undefined) return
  execFileSync('taskset', ['-a', '-p', '-c', CORES[role], String(pid)], { stdio: 'ignore' })
}

/** A command line run on the cores of `role` (the load generator's). */
export function pinned (command: string, args: readonly string[], role: keyof typeof CORES): [string, string[]] {
  return PINNING ? ['taskset', ['-c', CORES[role], command, ...args]] : [command, [...args]]
}

/** What the report says about pinning. */
export const PINNING_NOTE = PINNING
  ? `CPU pinning: each proxy on core 0 (one at a time), upstream, Redis and load generator on core(s) ${CORES.rest}.`
  : 'CPU pinning: off (BENCH_PIN=0, one core, or no taskset).'
