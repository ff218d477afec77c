import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'

/** `server.workers` as a process count. */
export const workerCount = (setting: number | 'auto' | undefined): number => setting === 'auto' ? availableParallelism() : setting ?? 1

/**
 * More workers than this per CPU (availableParallelism) only take turns on the CPUs, each with its
 * own memory, upstream connections and memory stores: warned of at start, not refused (a config
 * moved to a smaller machine still starts).
 */
export const MAX_WORKERS_PER_CPU = 4

/** What a worker process is told of its place at fork (in its environment). */
export const WORKER_ENV = { index: 'PORTCULLIS_WORKER_INDEX', count: 'PORTCULLIS_WORKERS' } as const

/** In a worker process, its index among the gateway's workers (0 to count - 1, kept across restarts) and their count; undefined elsewhere. */
export function workerPlace (): { index: number, count: number } | undefined {
  const index = process.env[WORKER_ENV.index]
  return cluster.isWorker && index !== undefined ? { index: Number(index), count: Number(process.env[WORKER_ENV.count]) } : undefined
}
