import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { parseCommand } from '../options.ts'
import type { StateFile } from '../../server/state-file.ts'

const HELP = `Usage: portcullis healthcheck

Exits 0 when the gateway started in this container (or machine) is healthy, 1 if not: with an
admin listener, when its /healthz answers 200 within 2 s (a hung gateway, or every worker hung,
does not); without one, when the gateway listener accepts connections. It finds the gateway
through the file PORTCULLIS_STATE_FILE names, which "portcullis start" writes once it listens, so
it works whatever ports the config uses: set the variable, to the same path, both where
"portcullis start" runs and where this runs (the Docker image sets it).`

const TIMEOUT_MS = 2_000

/** `url` with a wildcard address (0.0.0.0, ::, which takes IPv4 too) replaced by loopback, where it is reached from here. */
function reachable (url: string): URL {
  const u = new URL(url)
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = '127.0.0.1'
  return u
}

/** Whether the admin listener's /healthz answers 200 in time: the gateway's event loop runs, and it says it is alive. */
async function healthz (adminUrl: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/healthz', reachable(adminUrl)), { signal: AbortSignal.timeout(TIMEOUT_MS) })
    await res.body?.cancel()
    return res.status === 200
  } catch {
    return false
  }
}

/** Whether the listener accepts a connection (the kernel does that for a process that is stopped, too). */
function accepts (url: string): Promise<boolean> {
  const u = reachable(url)
  return new Promise(resolve => {
    const socket = connect({ host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port), timeout: TIMEOUT_MS })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

/** The state file's content, if it is one `portcullis start` writes: JSON with the URLs of its listeners. */
function stateOf (text: string): StateFile | undefined {
  let state: unknown
  try { state = JSON.parse(text) } catch { return undefined }
  if (typeof state !== 'object' || state === null) return undefined
  const { url, adminUrl } = state as Partial<Record<keyof StateFile, unknown>>
  const isUrl = (u: unknown) => typeof u === 'string' && URL.canParse(u)
  return isUrl(url) && (adminUrl === undefined || isUrl(adminUrl)) ? state as StateFile : undefined
}

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { config: false })
  if (typeof opts === 'number') return opts
  const file = process.env.PORTCULLIS_STATE_FILE
  if (file === undefined || file === '') { console.error('PORTCULLIS_STATE_FILE is not set: set it, to the same path, both here and where "portcullis start" runs (start writes the gateway\'s addresses to the file it names)'); return 1 }
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as { code?: string }).code
    console.error(code === 'ENOENT' ? `${file}: no gateway has started`
      : code === 'EISDIR' ? `${file}: a directory, not a file (PORTCULLIS_STATE_FILE names the file "portcullis start" writes)`
        : `${file}: cannot be read (${(err as Error).message})`)
    return 1
  }
  const state = stateOf(text)
  if (state === undefined) { console.error(`${file}: not a state file "portcullis start" writes (is PORTCULLIS_STATE_FILE another file?)`); return 1 }
  if (state.adminUrl !== undefined) {
    if (await healthz(state.adminUrl)) return 0
    console.error(`the gateway's admin listener at ${state.adminUrl} (pid ${state.pid}) did not answer /healthz with 200 within ${TIMEOUT_MS} ms`)
    return 1
  }
  if (await accepts(state.url)) return 0
  console.error(`the gateway at ${state.url} (pid ${state.pid}) does not accept connections`)
  return 1
}
