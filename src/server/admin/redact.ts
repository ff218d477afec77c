const SECRET_WORDS = new Set(['password', 'passwords', 'passwd', 'pwd', 'secret', 'secrets', 'token', 'tokens', 'key', 'keys',
  'apikey', 'authorization', 'credential', 'credentials'])

const REDACTED = '[redacted]'

/** `clientSecret`, `x-api-key`, `admin_token`: split into words, any of which names a secret. */
function looksSecret (key: string): boolean {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).some(w => SECRET_WORDS.has(w))
}

/**
 * A deep copy of `value` safe to show: every scalar at or below a secret-looking key is replaced,
 * and so is the password in any URL (`redis://user:pass@host`).
 */
export function redactSecrets (value: unknown, secret = false): unknown {
  if (Array.isArray(value)) return value.map(v => redactSecrets(v, secret))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSecrets(v, secret || looksSecret(k))]))
  }
  if (secret) return REDACTED
  return typeof value === 'string' ? value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*:)[^/@]*@/i, `$1${REDACTED}@`) : value
}
