import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { parseCommand } from '../options.ts'
import type { StateFile } from '../../server/state-file.ts'

const HELP = `Usage: portcullis healthcheck

Exits 0 when the gateway started in this container (or machine) accepts connections, 1 if not.
It finds the gateway through PORTCULLIS_STATE_FILE, which "portcullis start" writes once it
listens (the Docker image sets it), so it works whatever ports the config uses and without an
admin listener.`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { config: false })
  if (typeof opts === 'number') return opts
  const file = process.env.PORTCULLIS_STATE_FILE
  if (file === undefined || file === '') { console.error('PORTCULLIS_STATE_FILE is not set'); return 1 }
  let state: StateFile
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as StateFile
  } catch {
    console.error(`${file}: no gateway has started`)
    return 1
  }
  const url = new URL(state.url)
  // A wildcard address is reached on loopback.
  const host = ['0.0.0.0', '[::]'].includes(url.hostname) ? '127.0.0.1' : url.hostname.replace(/^\[(.*)\]$/, '$1')
  const ok = await new Promise<boolean>(resolve => {
    const socket = connect({ host, port: Number(url.port), timeout: 2_000 })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
  if (!ok) console.error(`the gateway at ${state.url} (pid ${state.pid}) does not accept connections`)
  return ok ? 0 : 1
}
