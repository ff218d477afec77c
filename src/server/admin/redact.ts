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

/** `clientSecret`, `x-api-key`, `admin_token`: split into words. */
const words = (key: string): string[] => key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== '')

/**
 * Whether a key's value is secret. Any word of it names a secret for a string (`x-api-key`,
 * `clientSecret`); a number only when it ends in one (`pin` no, `password: 1234` yes,
 * `maxTokenBytes` no); a boolean (`hideCredentials`) never: it says nothing of a secret.
 */
function secretValue (key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return false
  const w = words(key)
  if (typeof value === 'number') return SECRET_WORDS.has(w[w.length - 1] ?? '')
  return w.some(x => SECRET_WORDS.has(x))
}

// A URL's query parameter: its name and value, up to the next parameter, fragment or space.
const QUERY_PARAM = /([?&])([^=&#\s]+)=([^&#\s]*)/g

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
 * is replaced, every header value of a header map, and in strings, URL user and password and
 * secret-looking query values (`https://TOKEN@host`, `?api_key=...`).
 */
export function redactSecrets (value: unknown, secret = false): unknown {
  if (Array.isArray(value)) return value.map(v => redactSecrets(v, secret))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => {
      if (HEADER_MAPS.has(k) && v !== null && typeof v === 'object' && !Array.isArray(v)) return [k, redactHeaderMap(v)]
      return [k, redactSecrets(v, secret || secretValue(k, v))]
    }))
  }
  if (secret) return REDACTED
  return typeof value === 'string' ? redactString(value) : value
}

