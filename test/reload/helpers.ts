import { existsSync, writeFileSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.ts'
import { Metrics } from '../../src/metrics/metrics.ts'
import { startPortcullis, type Portcullis, type StartOptions } from '../../src/server/start.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { until } from '../helpers/wait.ts'

/** A config file in a fresh temporary directory, removed by `remove()`. */
export interface ConfigFile {
  readonly dir: string
  readonly file: string
  /** Overwrites the file in place (same inode). */
  write (yaml: string): Promise<void>
  /** Writes a temporary file and renames it over the config, as many editors save. */
  replace (yaml: string): Promise<void>
  remove (): Promise<void>
}

export async function configFile (yaml: string): Promise<ConfigFile> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-reload-'))
  const file = join(dir, 'gateway.yaml')
  let n = 0
  const cf: ConfigFile = {
    dir,
    file,
    write: text => writeFile(file, text),
    async replace (text) {
      const tmp = join(dir, `.gateway.yaml.${n++}.tmp`)
      await writeFile(tmp, text)
      await rename(tmp, file)
    },
    remove: () => rm(dir, { recursive: true, force: true })
  }
  await cf.write(yaml)
  return cf
}

export interface FileGateway extends Portcullis {
  readonly logs: Array<Record<string, unknown>>
}

/** A real gateway started from a config file, as `portcullis start` does, logging in memory. */
export async function startFromFile (file: string, options: StartOptions = {}): Promise<FileGateway> {
  const env = options.env ?? {}
  const loaded = await loadConfig(file, env)
  const { log, lines } = memoryLogger()
  const running = await startPortcullis(loaded, log, new Metrics({ defaultMetrics: false }), { ...options, env })
  return Object.assign(running, { logs: lines })
}

/**
 * A config with the gateway and admin listeners on ephemeral loopback ports, the given upstreams
 * (name to target URLs), and routes given as YAML list items; `extra` is inserted before upstreams.
 */
export function gatewayYaml (upstreams: Record<string, string[]>, routes: string, extra = ''): string {
  return `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
${extra}
upstreams:
${Object.entries(upstreams).map(([name, urls]) => `  ${name}: { targets: [ ${urls.map(u => `{ url: "${u}" }`).join(', ')} ] }`).join('\n')}
routes:
${routes}
`
}

/** An upstream that answers 200 with its own name in the body and an `x-upstream` header. */
export function namedUpstream (name: string): Promise<TestUpstream> {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'x-upstream': name, 'content-type': 'text/plain' }).end(name))
  })
}

/** Longer than the config watcher's 150 ms debounce plus the file system's notice: a change not acted on by then is ignored. */
export const WATCH_SETTLE_MS = 500

/** Polls `check` until it returns something other than undefined, for at most `maxMs`. */
export async function waitFor<T> (check: () => Promise<T | undefined> | T | undefined, maxMs = 5_000): Promise<T | undefined> {
  for (const start = performance.now(); performance.now() - start < maxMs;) {
    const v = await check()
    if (v !== undefined) return v
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return undefined
}

/** A target's requests and connections as GET /upstreams shows them. */
export interface Load { inFlight: number, queued: number, connections: { open: number, busy: number } }
/** A target in GET /upstreams: its totals, and the share of the configs a reload retired. */
export type TargetView = Load & { url: string, retired: Load }

/** An upstream that holds every response until `release()` (answering "done"; later ones at once); `held()` counts those waiting. */
export async function holdingUpstream (): Promise<{ up: TestUpstream, held: () => number, release: () => void }> {
  const held: ServerResponse[] = []
  let releasing = false
  const up = await startUpstream((req, res) => {
    req.resume()
    if (releasing) res.end('done')
    else held.push(res)
  })
  return { up, held: () => held.length, release: () => { releasing = true; for (const res of held.splice(0)) res.end('done') } }
}

/**
 * `<dir>/gate.ts`, a plugin "gate" whose setup holds the gateway's start (or a reload) until
 * `open()`: `reached()` resolves true once a setup is waiting. Files, so that it works across processes.
 */
export function startupGate (dir: string): { reached: () => Promise<boolean>, open: () => void } {
  const [waiting, go] = [join(dir, 'gate.waiting'), join(dir, 'gate.open')]
  writeUserPlugin(dir, 'gate', 500, `(async () => {
    const fs = await import('node:fs')
    fs.writeFileSync(${JSON.stringify(waiting)}, '')
    while (!fs.existsSync(${JSON.stringify(go)})) await new Promise(resolve => setTimeout(resolve, 20))
    return {}
  })()`)
  return {
    reached: () => until(() => existsSync(waiting), 30_000),
    open: () => writeFileSync(go, '')
  }
}
