/**
 * What a value a plugin threw (or rejected with) says, for an error message: an Error's message,
 * String() of anything else (JS lets a plugin throw null, a string, an object). Never throws itself.
 */
export function describeThrown (value: unknown): string {
  if (value instanceof Error) return value.message
  try {
    return String(value)
  } catch {
    // An object without a usable toString (Object.create(null), a Proxy): its tag at least.
    return Object.prototype.toString.call(value)
  }
}

/**
 * A thrown value as a log line's `err`: an Error as it is; anything else as pino shows an error,
 * `{ type, message }` (type: null, string, number, object...), rather than a bare `null`.
 */
export function loggedThrown (value: unknown): object {
  if (value instanceof Error) return value
  // pino's err serializer takes `type` from the name of an object without a constructor; not enumerable, it is not repeated.
  const shown = Object.create(null) as { message: string }
  Object.defineProperty(shown, 'name', { value: value === null ? 'null' : typeof value })
  shown.message = describeThrown(value)
  return shown
}

/**
 * A failure of a request or response hook, with the plugin it is of: what Runtime.pluginFailed logs.
 * `thrown` is whatever the hook threw or rejected with (JS lets a plugin throw null, a string).
 */
export class PluginHookFailure {
  readonly plugin: string
  readonly thrown: unknown
  constructor (plugin: string, thrown: unknown) {
    this.plugin = plugin
    this.thrown = thrown
  }
}
