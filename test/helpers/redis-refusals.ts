import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { RedisProcess } from './redis.ts'

const run = promisify(execFile)

/**
 * A way a healthy Redis refuses calls for a while, with the reply's first word: `start` brings it
 * on, once the server answers so, and resolves with what ends it (once it no longer does).
 */
export interface Refusal {
  readonly reply: 'BUSY' | 'MISCONF' | 'NOREPLICAS'
  /** Whether reads are answered meanwhile (only writes refused). */
  readonly reads: boolean
  start (redis: RedisProcess): Promise<() => Promise<void>>
}

/** Runs `command` through redis-cli until its output starts with `reply` (or does not, `not`), 5 s at most. */
async function answers (redis: RedisProcess, command: string[], reply: string, not = false): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if ((await redis.cli(...command)).startsWith(reply) !== not) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${command.join(' ')} ${not ? 'still' : 'never'} answered ${reply}`)
}

export const REFUSALS: readonly Refusal[] = [
  {
    // Another client's long script: every command but a few is answered BUSY once it has run busy-reply-threshold.
    reply: 'BUSY',
    reads: false,
    async start (redis) {
      await redis.cli('CONFIG', 'SET', 'busy-reply-threshold', '100')
      const busy = redis.client()
      const looping = busy.eval('while true do end', 0).catch(() => {})
      await answers(redis, ['PING'], 'BUSY')
      return async () => {
        await redis.cli('SCRIPT', 'KILL')
        await looping
        busy.disconnect()
        await answers(redis, ['PING'], 'BUSY', true)
      }
    }
  },
  {
    // An RDB save that failed (its child killed, as by a full disk or the OOM killer): writes refused
    // until a save succeeds (stop-writes-on-bgsave-error, on by default).
    reply: 'MISCONF',
    reads: true,
    async start (redis) {
      // A key to save, slowly (1 s per key): the child is killed while at it.
      await redis.cli('SET', 'refusal:k', 'v')
      await redis.cli('CONFIG', 'SET', 'save', '3600 1')
      await redis.cli('CONFIG', 'SET', 'rdb-key-save-delay', '1000000')
      await redis.cli('BGSAVE')
      const { stdout } = await run('pgrep', ['-P', String(redis.pid)])
      process.kill(Number(stdout.trim().split('\n')[0]), 'SIGKILL')
      await answers(redis, ['SET', 'refusal:k', 'v'], 'MISCONF')
      return async () => {
        await redis.cli('CONFIG', 'SET', 'rdb-key-save-delay', '0')
        await redis.cli('BGSAVE')
        await answers(redis, ['SET', 'refusal:k', 'v'], 'MISCONF', true)
        await redis.cli('CONFIG', 'SET', 'save', '')
      }
    }
  },
  {
    // Fewer replicas than min-replicas-to-write (one restarting, or cut off): writes refused.
    reply: 'NOREPLICAS',
    reads: true,
    async start (redis) {
      await redis.cli('CONFIG', 'SET', 'min-replicas-to-write', '1')
      await answers(redis, ['SET', 'refusal:k', 'v'], 'NOREPLICAS')
      return async () => {
        await redis.cli('CONFIG', 'SET', 'min-replicas-to-write', '0')
      }
    }
  }
]
