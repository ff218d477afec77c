import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { freePort } from './ports.ts'

const run = promisify(execFile)

class RedisExited extends Error {
  constructor (code: number) { super(`redis-server exited with ${code}`) }
}

/**
 * A real redis-server the test owns: on a free loopback port, no persistence, in a temp dir.
 * It can be stopped, killed and started again on the same port (to test outages).
 */
export class RedisProcess {
  readonly port: number
  readonly dir: string
  readonly #args: string[]
  readonly #configFile: string | undefined
  #child: ChildProcess | undefined

  private constructor (port: number, dir: string, args: string[], configFile: string | undefined) {
    this.port = port
    this.dir = dir
    this.#args = args
    this.#configFile = configFile
  }

  /**
   * Starts redis-server (extra `args` as on its command line, e.g. ['--cluster-enabled', 'yes']).
   * `config`: the text of a config file to start with (a sentinel's, which it rewrites).
   */
  static async start (args: string[] = [], config?: string): Promise<RedisProcess> {
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'pc-redis-'))
      let file: string | undefined
      if (config !== undefined) writeFileSync(file = join(dir, 'redis.conf'), config)
      const r = new RedisProcess(await freePort(), dir, args, file)
      try {
        await r.restart()
        return r
      } catch (err) {
        rmSync(dir, { recursive: true, force: true })
        // The free port was taken by a parallel test between freePort() and redis-server's bind.
        if (!(err instanceof RedisExited) || attempt === 5) throw err
      }
    }
  }

  get url (): string { return `redis://127.0.0.1:${this.port}` }
  /** The running server's process id. */
  get pid (): number | undefined { return this.#child?.pid }
  get address (): string { return `127.0.0.1:${this.port}` }

  /** (Re)starts the server on its port and waits until it answers, as itself. */
  async restart (): Promise<void> {
    const child = spawn('redis-server', [...(this.#configFile === undefined ? [] : [this.#configFile]), '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--protected-mode', 'no', ...this.#args], { stdio: 'ignore' })
    this.#child = child
    watchOver(child)
    // A parallel test's redis-server that took the port would answer too: only this one's pid counts
    // (asked with the password this one requires, if any).
    const at = this.#args.indexOf('--requirepass')
    const env = at === -1 ? process.env : { ...process.env, REDISCLI_AUTH: this.#args[at + 1] }
    // And not while it loads a dump: it answers LOADING to commands meanwhile (a sentinel has no persistence section).
    const info = ['-h', '127.0.0.1', '-p', String(this.port), 'INFO', 'server', 'persistence']
    for (let i = 0; i < 200; i++) {
      // Bounded: a server of another kind on the port might never answer.
      const ready = await run('redis-cli', info, { env, timeout: 5_000 }).then(({ stdout }) => /^loading:1/m.test(stdout) ? undefined : /^process_id:(\d+)/m.exec(stdout)?.[1], () => undefined)
      if (ready === String(child.pid)) return
      if (child.exitCode !== null) throw new RedisExited(child.exitCode)
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    throw new Error('redis-server did not start')
  }

  /** Runs one command through redis-cli; its output, trimmed. */
  async cli (...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args])
    return stdout.trim()
  }

  /** A client of the test's own (not the gateway's), for CLIENT LIST, INFO and the like. */
  client (): Redis {
    return new Redis(this.port, '127.0.0.1', { lazyConnect: false, maxRetriesPerRequest: 1 })
  }

  /**
   * MONITOR on a raw socket (ioredis's monitor mode can misread a reply racing its ready check):
   * the command names clients send, lower-cased, script-internal calls left out.
   */
  async monitor (): Promise<{ commands: string[], close (): void }> {
    const commands: string[] = []
    const socket = connect(this.port, '127.0.0.1')
    let rest = ''
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.on('data', (chunk: Buffer) => {
        const lines = (rest + chunk.toString('latin1')).split('\r\n')
        rest = lines.pop() ?? ''
        for (const line of lines) {
          if (line === '+OK') resolve()
          // +1796194804.686074 [0 127.0.0.1:55978] "evalsha" "..."
          const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"/.exec(line)
          if (m !== null && m[1] !== 'lua') commands.push(m[2]!.toLowerCase())
        }
      })
      socket.write('MONITOR\r\n')
    })
    return { commands, close: () => socket.destroy() }
  }

  /** SIGKILL: the server is gone at once, as in a crash. */
  async kill (): Promise<void> { await this.#stop('SIGKILL') }

  async stop (): Promise<void> {
    await this.#stop('SIGTERM')
    rmSync(this.dir, { recursive: true, force: true })
  }

  async #stop (signal: NodeJS.Signals): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    await new Promise(resolve => { child.once('exit', resolve); child.kill(signal) })
  }
}

/**
 * Kills `child` when this process dies, however it dies (a test killed at its timeout left
 * redis-servers running): a shell waits on a pipe from this process, which only its end closes.
 */
function watchOver (child: ChildProcess): void {
  if (child.pid === undefined) return
  const watchdog = spawn('sh', ['-c', `read _; kill -KILL ${child.pid}`], { stdio: ['pipe', 'ignore', 'ignore'] })
  watchdog.unref()
  ;(watchdog.stdin as unknown as { unref (): void }).unref()
  // Gone on its own: the watchdog goes too, before the pid can name another process.
  child.once('exit', () => watchdog.kill('SIGKILL'))
}

/** REDIS_URL when set (a server someone else runs), else a server of the test's own. */
export async function redisForTest (): Promise<{ url: string, server: RedisProcess | undefined, close (): Promise<void> }> {
  const env = process.env.REDIS_URL
  if (env !== undefined && env !== '') return { url: env, server: undefined, close: async () => {} }
  const server = await RedisProcess.start()
  return { url: server.url, server, close: () => server.stop() }
}

/** A Redis Cluster of `masters` nodes (no replicas), slots assigned by redis-cli --cluster create. */
export async function startCluster (masters = 3): Promise<{ nodes: RedisProcess[], close (): Promise<void> }> {
  const nodes: RedisProcess[] = []
  for (let i = 0; i < masters; i++) {
    nodes.push(await RedisProcess.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']))
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map(n => n.address), '--cluster-replicas', '0', '--cluster-yes'])
  for (let i = 0; i < 200; i++) {
    const states = await Promise.all(nodes.map(n => n.cli('CLUSTER', 'INFO')))
    if (states.every(s => s.includes('cluster_state:ok'))) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { nodes, close: async () => { await Promise.all(nodes.map(n => n.stop())) } }
}

/** A sentinel monitoring `primary` as `name` (quorum 1, down after 1 s). */
export async function startSentinelFor (primary: RedisProcess, name = 'mymaster'): Promise<RedisProcess> {
  return await RedisProcess.start(['--sentinel'], [
    `sentinel monitor ${name} 127.0.0.1 ${primary.port} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 3000`,
    `sentinel parallel-syncs ${name} 1`
  ].join('\n') + '\n')
}

/**
 * A primary, a replica and a sentinel monitoring them as `name` (quorum 1, down after 1 s), once
 * the sentinel knows the replica (so that a failover can promote it).
 */
export async function startSentinel (name = 'mymaster'): Promise<{ primary: RedisProcess, replica: RedisProcess, sentinel: RedisProcess, close (): Promise<void> }> {
  // No diskless-sync delay (5 s by default): the replica has the data as soon as it links.
  const primary = await RedisProcess.start(['--repl-diskless-sync-delay', '0'])
  const replica = await RedisProcess.start(['--replicaof', '127.0.0.1', String(primary.port), '--repl-diskless-sync-delay', '0'])
  for (let i = 0; i < 400 && !(await replica.cli('INFO', 'replication')).includes('master_link_status:up'); i++) {
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  const sentinel = await startSentinelFor(primary, name)
  // Learnt from the primary's INFO, which the sentinel reads as soon as it starts; then the replica's own INFO (its link).
  for (let i = 0; i < 400 && !(await sentinel.cli('SENTINEL', 'replicas', name)).includes('master-link-status\nok'); i++) {
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return { primary, replica, sentinel, close: async () => { await Promise.all([sentinel.stop(), replica.stop(), primary.stop()]) } }
}

/** A redis-server of the test's own and a client of it, both ended with the test. */
export async function redisWithClient (t: Test): Promise<{ redis: RedisProcess, raw: Redis }> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const raw = redis.client()
  t.teardown(() => raw.quit())
  return { redis, raw }
}
