import type { Logger } from 'pino'

// A plugin may throw anything: a frozen Error, a getter that throws, a cause chain 20 000 deep, an
// AggregateError holding itself, a revoked Proxy. pino's error serializer, `instanceof` and String()
// throw on some of them (or recurse until the stack overflows): nothing here hands them on as they are.
const MAX_TEXT = 8 * 1024
const MAX_STACK = 16 * 1024
/** Causes (and an AggregateError's errors) shown below the value itself. */
const MAX_DEPTH = 5
const MAX_ERRORS = 10
/** Errors one value's snapshot shows in all (the value, its causes, their errors...). */
const MAX_ERRORS_SHOWN = 50
/** Other fields of an Error (code, statusCode...), with primitive values only. */
const MAX_FIELDS = 20
const MAX_FIELD_NAME = 100
/** The message of an Error whose message getter throws. */
const UNREADABLE = '(its message could not be read)'
/** Set by the gateway's own snapshot: an Error's own fields of these names are not copied over it. */
const SHOWN = new Set(['name', 'message', 'stack', 'cause', 'errors', 'type', 'raw', 'aggregateErrors'])

/** `text`, cut to `max` characters with how many more there were. */
function bounded (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(+${text.length - max} characters)`
}

/** `read()`, or undefined if it throws. */
function attempt<T> (read: () => T): T | undefined {
  try {
    return read()
  } catch {
    return undefined
  }
}

/** `value instanceof Error`, false where that throws (a Proxy's getPrototypeOf trap, a revoked Proxy). */
export function isError (value: unknown): value is Error {
  try {
    return value instanceof Error
  } catch {
    return false
  }
}

/**
 * What a value a plugin threw (or rejected with) says, for an error message: an Error's message,
 * String() of anything else (JS lets a plugin throw null, a string, an object). Never throws itself.
 */
export function describeThrown (value: unknown): string {
  if (isError(value)) {
    const message = attempt(() => value.message)
    if (typeof message === 'string') return bounded(message, MAX_TEXT)
  }
  try {
    return bounded(String(value), MAX_TEXT)
  } catch {
    // An object without a usable toString (Object.create(null), a Proxy): its tag at least.
    return attempt(() => Object.prototype.toString.call(value)) ?? `[${typeof value}]`
  }
}

/**
 * A thrown value as a log line's `err`, never the value itself: what pino shows of an error, read
 * once, each property apart (one that throws is left out): `{ type, message, stack }`, the causes
 * (MAX_DEPTH at most) and an AggregateError's errors likewise, other fields with primitive values
 * (code). Anything but an Error as `{ type, message }` (type: null, string, number, object...).
 */
export function loggedThrown (value: unknown): object {
  return snapshot(value, 0, { seen: new Set(), left: MAX_ERRORS_SHOWN })
}

/**
 * The errors one loggedThrown has shown, and how many more it may: errors that share causes and
 * aggregated errors (each the others' cause) would otherwise make a graph of thousands of nodes,
 * hundreds of MB of log line, at each failure. One shown already, or past the budget, is named only.
 */
interface Walk { readonly seen: Set<unknown>, left: number }

/** `value` as loggedThrown shows it; `depth`: how many errors it is a cause (or an aggregated error) of. */
function snapshot (value: unknown, depth: number, walk: Walk): object {
  // Without a prototype, pino's serializer takes `type` from `name`, not enumerable, so not repeated.
  const shown = Object.create(null) as Record<string, unknown>
  const error = isError(value)
  const name = error ? errorType(value) : value === null ? 'null' : typeof value
  Object.defineProperty(shown, 'name', { value: name })
  if (!error) {
    shown.message = describeThrown(value)
    return shown
  }
  walk.seen.add(value)
  walk.left--
  let message: unknown
  try {
    message = value.message
  } catch {
    message = UNREADABLE
  }
  shown.message = typeof message === 'string' ? bounded(message, MAX_TEXT) : message === undefined ? '' : describeThrown(message)
  const stack = attempt(() => value.stack)
  if (typeof stack === 'string') shown.stack = bounded(stack, MAX_STACK)
  if (depth < MAX_DEPTH) {
    const inner = (e: unknown) => isError(e) && !walk.seen.has(e) && walk.left > 0 ? snapshot(e, depth + 1, walk) : describeThrown(e)
    // A VError's cause() is not called: its message holds its cause's already.
    const cause = attempt(() => value.cause)
    if (cause !== undefined && typeof cause !== 'function' && !walk.seen.has(cause)) shown.cause = inner(cause)
    const errors = attempt(() => { const all: unknown = (value as { errors?: unknown }).errors; return Array.isArray(all) ? all.slice(0, MAX_ERRORS) : undefined })
    // Not enumerable, as an AggregateError's own: pino shows them once, as aggregateErrors.
    if (errors !== undefined) Object.defineProperty(shown, 'errors', { value: errors.map(inner) })
  }
  for (const key of attempt(() => Object.keys(value).slice(0, MAX_FIELDS)) ?? []) {
    if (SHOWN.has(key) || key.length > MAX_FIELD_NAME) continue
    const v = attempt(() => (value as unknown as Record<string, unknown>)[key])
    if (typeof v === 'string') shown[key] = bounded(v, MAX_TEXT)
    else if (typeof v === 'number' || typeof v === 'boolean') shown[key] = v
    else if (typeof v === 'bigint') shown[key] = String(v)
  }
  return shown
}

/** An Error's type as pino's serializer names it: its constructor's name, else its own name. */
function errorType (value: Error): string {
  const type = attempt(() => {
    const ctor: unknown = value.constructor
    return typeof ctor === 'function' ? ctor.name : value.name
  })
  return typeof type === 'string' && type !== '' ? bounded(type, MAX_FIELD_NAME) : 'Error'
}

/**
 * Logs `thrown` (as loggedThrown shows it) with `fields`: never throws, so that a caller answering
 * a request, or running in an event listener, goes on whatever the value is.
 */
export function logThrown (log: Logger, level: 'error' | 'warn' | 'debug', msg: string, thrown: unknown, fields: Record<string, unknown>): void {
  try {
    log[level]({ err: loggedThrown(thrown), ...fields }, msg)
  } catch {
    // Left: the fields of the gateway's own making, and what the line is about.
    try {
      log[level]({ ...fields, err: { message: 'the error could not be logged' } }, msg)
    } catch { /* the logger's destination itself failed */ }
  }
}

/**
 * A failure of a request or response hook, with the plugin it is of: what Runtime.pluginFailed logs.
 * `thrown` is whatever the hook threw or rejected with (JS lets a plugin throw null, a string).
 */
export class PluginHookFailure {
  readonly plugin: string
  readonly thrown: unknown
  readonly #tagged = true
  constructor (plugin: string, thrown: unknown) {
    this.plugin = plugin
    this.thrown = thrown
  }

  /** `value instanceof PluginHookFailure`, without the traps of a Proxy (which `instanceof` runs, and which may throw). */
  static is (value: unknown): value is PluginHookFailure {
    return typeof value === 'object' && value !== null && #tagged in value
  }
}
