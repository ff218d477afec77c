import { availableParallelism } from 'node:os'

/** `server.workers` as a process count. */
export const workerCount = (setting: number | 'auto' | undefined): number => setting === 'auto' ? availableParallelism() : setting ?? 1
