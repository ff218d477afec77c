import { hideUserinfo, REDACTED } from '../../config/url-userinfo.ts'

const SECRET_WORDS = new Set(['password', 'passwords', 'passwd', 'pwd', 'secret', 'secrets', 'token', 'tokens', 'key', 'keys',
  'apikey', 'authorization', 'credential', 'credentials'])
// In a URL's query, names are terser: ?sig=, ?auth=, X-Amz-Signature=.
const QUERY_WORDS = new Set([...SECRET_WORDS, 'sig', 'signature', 'auth', 'pass', 'session'])

/**
 * Maps of header names to values, written or matched: request-headers' `set`/`add`, OTLP
 * `headers`, `match.headers`. A header value is often a credential whatever its name.
 */
const HEADER_MAPS = new Set(['headers', 'set', 'add'])

/**
 * Maps whose keys are names: chosen in the file (`upstreams: { api-keys: ... }`, `stores`) or a
 * plugin's (`plugins: { key-auth: ... }`). A name says nothing of what is under it: the keys below
 * decide. Not a consumer's `metadata`: free-form, its `secrets: { ... }` are what they say.
 * (Under a consumer's `credentials`, everything is hidden.)
 */
const NAME_MAPS = new Set(['upstreams', 'stores', 'plugins'])

/** What the cache's `key` settings hold: a `key` object of these alone is settings, not a key (a JWK). */
const KEY_SETTINGS = new Set(['host', 'query', 'headers'])

/** `clientSecret`, `x-api-key`, `admin_token`: split into words. */
const words = (key: string): string[] => key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== '')

const isMap = (value: unknown): value is object => value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * Whether a key's value is secret, all of it. Any word of it names a secret for a string or a list
 * (`x-api-key`, `clientSecret`); a number only when it ends in one (`pin` no, `password: 1234`
 * yes, `maxTokenBytes` no); a boolean (`hideCredentials`) never: it says nothing of a secret; an
 * object too, but for `key` alone: settings of what makes a key (the cache's `key: { query }`),
 * whose keys decide (a TLS `key` file, `apiKey`, `keys: [...]` stay hidden).
 */
function secretValue (key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return false
  const w = words(key)
  if (typeof value === 'number') return SECRET_WORDS.has(w[w.length - 1] ?? '')
  if (key === 'key' && isMap(value) && Object.keys(value).every(k => KEY_SETTINGS.has(k))) return false
  return w.some(x => SECRET_WORDS.has(x))
}

// A URL's query parameter: its name and value, up to the next parameter, fragment, space or
// quote (a message quoting the URL: `"http://h/?token=..." has a path`).
const QUERY_PARAM = /([?&])([^=&#\s"]+)=([^&#\s"]*)/g

/** `text` with the userinfo of every URL and the values of secret-looking query parameters replaced. */
function redactString (text: string): string {
  const shown = hideUserinfo(text)
  if (!shown.includes('://') || !shown.includes('=')) return shown
  return shown.replace(QUERY_PARAM, (all, sep: string, name: string) => words(name).some(w => QUERY_WORDS.has(w)) ? `${sep}${name}=${REDACTED}` : all)
}

/** Every value of a header map (its names are kept: they say what is sent or matched). */
const redactHeaderMap = (map: object): Record<string, unknown> => Object.fromEntries(Object.keys(map).map(k => [k, REDACTED]))

/**
 * A deep copy of `value` safe to show (GET /config): every value at or below a secret-looking key
 * is replaced (a name is no such key: NAME_MAPS), every header value of a header map, and in
 * strings, URL user and password and secret-looking query values (`https://TOKEN@host`, `?api_key=...`).
 */
export function redactSecrets (value: unknown): unknown {
  return redact(value, false, false)
}

/** `secret`: under a secret-looking key; `names`: `value`'s keys are names (a NAME_MAPS map). */
function redact (value: unknown, secret: boolean, names: boolean): unknown {
  if (Array.isArray(value)) return value.map(v => redact(v, secret, false))
  if (isMap(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => {
      if (!names && HEADER_MAPS.has(k) && isMap(v)) return [k, redactHeaderMap(v)]
      // A name exempts the settings under it, not a value given under it.
      const named = names && isMap(v)
      return [k, redact(v, secret || (!named && secretValue(k, v)), !names && NAME_MAPS.has(k) && isMap(v))]
    }))
  }
  if (secret) return REDACTED
  return typeof value === 'string' ? redactString(value) : value
}

