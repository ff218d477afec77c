/** An access line's JSON fields read by accessPretty. */
interface AccessFields {
  time?: unknown, method?: unknown, path?: unknown, status?: unknown, durationMs?: unknown,
  route?: unknown, requestId?: unknown, consumer?: unknown, error?: unknown, msg?: unknown,
  reqHeaders?: unknown, resHeaders?: unknown
}

/** pino-pretty's colours (colorette's): INFO green, the message cyan. */
const INFO = '\x1b[32mINFO\x1b[39m: \x1b[36m'
const END_MSG = '\x1b[39m'

/**
 * A character that would break the line or its fields apart, or that a terminal acts on (a control,
 * C1's too: U+009B starts an escape sequence, U+0085 a line; a space, a quote; line separators, bidi
 * overrides): such a value is shown quoted, those JSON leaves as they are escaped too.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x20"\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const UNESCAPED = /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const escaped = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`

const shown = (value: unknown): string => typeof value === 'string' && !UNSAFE.test(value) ? value : (JSON.stringify(value) ?? '').replace(UNESCAPED, escaped)
/** ` name=value`, or nothing for a field the line has not (a rejected request's path, duration). */
const part = (value: unknown, name = ''): string => value === undefined ? '' : ` ${name}${shown(value)}`
const two = (n: number): string => n < 10 ? `0${n}` : `${n}`

/** `[HH:MM:ss.` of the last second rendered: local time, as pino-pretty's SYS:HH:MM:ss.l. */
let second = -1
let secondText = ''

function clock (time: number): string {
  const s = Math.floor(time / 1000)
  if (s !== second) {
    const d = new Date(time)
    second = s
    secondText = `[${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.`
  }
  const ms = time - s * 1000
  return `${secondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}]`
}

/**
 * An access line (`request`, `request rejected`: JSON, as AccessLog writes it) shown on one line:
 * `[HH:MM:ss.l] INFO: request GET /path 200 1.2 ms route=r requestId=… [consumer=…] [error=…]`,
 * parsed once. pino-pretty took some 30 µs for one on the main thread (a field a line, each
 * coloured): a third of a proxied request's cost. undefined for one with headers
 * (logging.headers), without a request id (a plugin's line), or not JSON: pino-pretty's to show whole.
 */
export function accessPretty (line: string): string | undefined {
  let f: AccessFields
  try {
    f = JSON.parse(line) as AccessFields
  } catch {
    return undefined
  }
  // Only the gateway's own (a plugin's `request` line has fields of its own): theirs carry a request id.
  if (f.reqHeaders !== undefined || f.resHeaders !== undefined || typeof f.time !== 'number' || typeof f.requestId !== 'string') return undefined
  return `${clock(f.time)} ${INFO}${f.msg === 'request rejected' ? f.msg : 'request'}${END_MSG}${part(f.method)}${part(f.path)}${part(f.status)}` +
    `${f.durationMs === undefined ? '' : ` ${shown(f.durationMs)} ms`}${part(f.route, 'route=')}${part(f.requestId, 'requestId=')}` +
    `${part(f.consumer, 'consumer=')}${part(f.error, 'error=')}\n`
}
