import { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'
import { parseConfig, type LoadedConfig } from '../../src/config/load.ts'
import { startPortcullis, type Portcullis } from '../../src/server/start.ts'
import { REDACTION } from '../../src/logging/logger.ts'

export interface TestGateway extends Portcullis {
  /** Every log line the gateway wrote, parsed. */
  readonly logs: Array<Record<string, unknown>>
  readonly loaded: LoadedConfig
}

/** A logger that keeps its lines in memory (synchronously) so tests can read them; credentials redacted as the real logger does. */
export function memoryLogger (level = 'info'): { log: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  return { log: pino({ level, redact: REDACTION }, stream), lines }
}

/**
 * A real gateway on an ephemeral loopback port. `yaml` is a full config except `server`, which
 * is added (port 0) unless given; `admin: true` adds an admin listener (port 0, for /metrics).
 * Relative paths in it resolve against `file`; `watch` reloads when it (or a PEM file it names) changes.
 */
export async function startGateway (yaml: string, options: { env?: NodeJS.ProcessEnv, file?: string, admin?: boolean, watch?: boolean } = {}): Promise<TestGateway> {
  const withAdmin = options.admin === true ? `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n${yaml}` : yaml
  const text = /^server:/m.test(yaml) ? withAdmin : `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${withAdmin}`
  const loaded = await parseConfig(text, options.file ?? 'test.yaml', options.env ?? {})
  // At the config's logging.level, as `portcullis start` logs.
  const { log, lines } = memoryLogger(loaded.config.logging?.level)
  const running = await startPortcullis(loaded, log, undefined, { watch: options.watch })
  // Descriptors, not a spread: a spread would copy inFlight's value at start, not its getter.
  return Object.defineProperties({ logs: lines, loaded }, Object.getOwnPropertyDescriptors(running)) as TestGateway
}
