import pino, { type Logger } from 'pino'

export interface LoggerOptions { level?: string, pretty?: boolean }

// Credentials never reach the logs, whichever log line carries headers.
const REDACT = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key', 'apikey']
  .flatMap(h => [`reqHeaders["${h}"]`, `headers["${h}"]`])
  .concat(['resHeaders["set-cookie"]'])

/** The process logger: JSON lines, or readable output when stdout is a terminal. */
export function createLogger (options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true
  return pino({
    level: options.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' } } : undefined
  }, pretty ? undefined : pino.destination({ sync: false }))
}
