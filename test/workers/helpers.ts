import type { IncomingMessage, ServerResponse } from 'node:http'
import { Client, request } from 'undici'
import { spawnCli, stopCli, type CliProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { configFile, namedUpstream } from '../reload/helpers.ts'

type Line = Record<string, unknown>

/** `n` requests, each on a connection of its own (so the cluster spreads them over the workers). */
export async function fresh (url: string, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const client = new Client(new URL(url).origin)
    try {
      const res = await client.request({ path: new URL(url).pathname, method: 'GET' })
      out.push(`${res.statusCode} ${await res.body.text()}`)
    } catch (err) {
      out.push(`error ${(err as Error).message}`)
    } finally {
      await client.close()
    }
  }
  return out
}

/**
 * Two upstreams: `good` (answers "good"), and `flaky`, which serves traffic fine ("flaky") but
 * fails its health check once `sickens()` was called. Both closed at teardown.
 */
export async function goodAndFlaky (t: { teardown (fn: () => unknown): void }): Promise<{ good: TestUpstream, flaky: TestUpstream, sickens: () => void }> {
  let sick = false
  const flaky = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (req.url === '/health' && sick) res.writeHead(503).end()
    else res.writeHead(200).end('flaky')
  })
  const good = await namedUpstream('good')
  t.teardown(() => Promise.all([flaky.close(), good.close()]))
  return { good, flaky, sickens: () => { sick = true } }
}

export interface Cluster {
  readonly cli: CliProcess
  readonly primary: Line
  readonly workers: number[]
  /** The gateway's URL and the admin listener's. */
  readonly url: string
  readonly admin: string
  /** Writes the config again with these `routes` (the rest unchanged) and reloads it with POST /config/reload: its answer. */
  reload (routes: string): Promise<unknown>
}

/**
 * `portcullis start` with two workers (shutdownTimeout 2s), listeners on ephemeral loopback ports, and
 * the given YAML under `upstreams:` and `routes:` (and user plugins, by absolute path; `extra`: top-level
 * YAML, such as `stores:`). Stopped, and its config file removed, at teardown.
 */
export async function startCluster (t: { teardown (fn: () => unknown): void }, upstreams: string, routes: string,
  options: { loadPlugins?: string[], env?: NodeJS.ProcessEnv, extra?: string } = {}): Promise<Cluster> {
  const yaml = (routes: string) => `${options.loadPlugins === undefined ? '' : `loadPlugins: ${JSON.stringify(options.loadPlugins)}\n`}server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
admin:
  listen: { host: 127.0.0.1, port: 0 }
${options.extra ?? ''}
upstreams:
${upstreams}
routes:
${routes}
`
  const cf = await configFile(yaml(routes))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'], options.env)
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const admin = String(primary.admin)
  const reload = async (routes: string) => {
    await cf.write(yaml(routes))
    return await (await request(`${admin}/config/reload`, { method: 'POST' })).body.json()
  }
  return { cli, primary, workers: primary.workers as number[], url: String(primary.url), admin, reload }
}
