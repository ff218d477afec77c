import { hideUrlSecrets, hideUserinfo, REDACTED } from './url-userinfo.ts'
import { PluginSetupError } from '../plugins/setup-error.ts'

/**
 * Words that name a secret, matched against each word of a key (`clientSecret`, `pass_word`,
 * `sessionCookie`), never part of one: `passive`, `bypass`, `authority` say nothing of a secret.
 * Nor do `session` (`sessionTimeout`) and `cookies` (the cache's list of cookie names).
 */
const SECRET_WORDS = new Set(['password', 'passwords', 'passwd', 'pwd', 'pass', 'passphrase', 'secret', 'secrets', 'token', 'tokens',
  'key', 'keys', 'apikey', 'authorization', 'auth', 'bearer', 'jwt', 'cookie', 'credential', 'credentials', 'signature', 'hmac', 'salt'])
// A secret in text only: a number named `pin` is as often a count or a pinned version as a PIN.
const TEXT_WORDS = new Set([...SECRET_WORDS, 'pin'])
// In a URL's query or fragment, names are terser: ?sig=, X-Amz-Signature=, OAuth's ?code= and #access_token=.
const QUERY_WORDS = new Set([...TEXT_WORDS, 'sig', 'session', 'code'])
// Words that end in one of these name a secret too (libpq's `sslpassword`, `authtoken`, `privatekey`,
// `awsaccesskey`); not the shorter ones: `monkey`, `bypass`, `encode`.
const SECRET_ENDING = /(?:password|passwd|passphrase|passcode|secret|token|apikey|credential|(?:secret|private|signing|access|api|encryption|master|client|hmac)key)s?$/
// One lowercase word starting with one names a secret held as text (`secretvalue`, `passwort`,
// `tokenvalue`, `privatepem`); not `private` alone (cache-control), nor a number (`tokenlimit: 5`).
const SECRET_START = /^(?:secret|passw|token|private.)/
// A word after the secret one that makes the name say what kind of secret, not which:
// `token_type=bearer`, `authMechanism`, `authSource`, `cookieName`.
const DESCRIBING = new Set(['type', 'mechanism', 'method', 'mode', 'source', 'name', 'hint', 'url', 'uri', 'endpoint', 'expires', 'expiry', 'ttl'])

/**
 * Objects whose `cookie` is a cookie's name, never its value: an upstream's `hashOn`, the locations
 * of an auth plugin's `from`.
 */
const COOKIE_NAMED = new Set(['hashOn', 'from'])

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

/**
 * Settings objects under a secret-looking key, by the keys they may hold: the cache's `key` (not a
 * key, such as a JWK), server.tls's `clientAuth` (a CA file and a mode, not credentials).
 */
const SETTINGS: ReadonlyMap<string, ReadonlySet<string>> = new Map([['key', new Set(['host', 'query', 'headers'])], ['clientAuth', new Set(['ca', 'mode'])]])

/** Keys of webhooks (`webhook`, `slackHookUrl`, `hooks`): the URL's path is the credential (hooks.slack.com/services/T00/B00/SECRET). */
const HOOK_WORD = /hooks?$/
// A URL past its scheme and host: its path, query and fragment, up to a space or quote.
const URL_PATH = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#"]+)[/?#][^\s"]*/gi

/** `clientSecret`, `x-api-key`, `admin_token`, `User Id`: split into words. */
const words = (key: string): string[] => key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== '')

const isMap = (value: unknown): value is object => value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * Whether a key's value is secret, all of it. Any word of it names a secret for a string or a list
 * (`x-api-key`, `clientSecret`, `privatekey`, `pin`); a number only when it ends in one (`pin` no,
 * `password: 1234` yes, `maxTokenBytes` no); a boolean (`hideCredentials`) never: it says nothing
 * of a secret; an object too, but for SETTINGS, whose keys decide (the cache's `key: { query }`; a
 * TLS `key` file, `apiKey`, `keys: [...]` stay hidden).
 */
function secretValue (key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return false
  const w = words(key)
  if (typeof value === 'number') {
    const last = w[w.length - 1] ?? ''
    return SECRET_WORDS.has(last) || SECRET_ENDING.test(last)
  }
  const settings = SETTINGS.get(key)
  if (settings !== undefined && isMap(value) && Object.keys(value).every(k => settings.has(k))) return false
  return secretWords(w, TEXT_WORDS)
}

const secretWord = (word: string, secrets: ReadonlySet<string>): boolean => secrets.has(word) || SECRET_ENDING.test(word) || SECRET_START.test(word)

/** Whether a name, in words, names a secret: one of its words does, unless DESCRIBING follows the last such one. */
function secretWords (w: readonly string[], secrets: ReadonlySet<string>): boolean {
  const last = w.findLastIndex(x => secretWord(x, secrets))
  return last !== -1 && !DESCRIBING.has(w[last + 1] ?? '')
}

// A query or fragment, of an absolute URL, a relative one or a path (`/health?token=`, `?a=b`): from
// a `?` or `#` at the start or after anything but a space (`and ?token=x` is prose), up to the next
// space or quote (a message quoting the URL: `"http://h/?token=..." has a path`).
const QUERY = /(?<!\s)[?#][^\s"]*/g
// One of its parameters: its name and value, up to the next parameter or fragment.
const URL_PARAM = /([?&#])([^=&#]+)=([^&#]*)/g
// A `Name=Value` pair of a connection string, `;`-separated (`Server=db;User Id=sa;Password=X`) or
// libpq's space-separated (`host=h password=X dbname=d`): its value quoted, braced, or up to the
// next `;` or space before another pair. A name is words only: no URL's `https://h/?a=`.
const PAIR = /(^|[;\s])([\w.-]+(?: [\w.-]+)*)\s*=\s*("[^"]*"|'(?:\\.|[^'\\])*'|\{[^}]*\}|(?:(?!\s+[\w.-]+\s*=)[^;])*)/g

// A key glued to its value (`token:abc` in { }, read as one key): quoted, or up to a space, quote, comma or
// bracket (a colon before one ends a path: `admin.token:abc: has no value`). Not in a URL path (`/v1/secrets:list`).
const GLUED_PAIR = /(^|[^\w/-])([A-Za-z][\w-]*):("[^"]*"|'[^']*'|[^\s"'`,{}[\]]+?(?=:?(?:[\s"'`,{}[\]]|$)))/g

const secretName = (name: string, secrets: ReadonlySet<string>): boolean => secretWords(words(name), secrets)

/** `text` with the values of secret-looking glued `name:value` keys replaced. */
const hideGlued = (text: string): string => text.replace(GLUED_PAIR, (all, sep: string, name: string) => secretName(name, TEXT_WORDS) ? `${sep}${name}:${REDACTED}` : all)

/**
 * `text` with the userinfo of every URL, the values of secret-looking query and fragment parameters,
 * and those of secret-looking `Name=Value` pairs and (`glued`) glued `name:value` keys replaced.
 */
function redactString (text: string, glued = true): string {
  const shown = glued ? hideGlued(hideUserinfo(text)) : hideUserinfo(text)
  if (!shown.includes('=')) return shown
  return shown
    .replace(QUERY, query => query.replace(URL_PARAM, (all, sep: string, name: string) => secretName(name, QUERY_WORDS) ? `${sep}${name}=${REDACTED}` : all))
    .replace(PAIR, (all, sep: string, name: string) => secretName(name, TEXT_WORDS) ? `${sep}${name}=${REDACTED}` : all)
}

// A `${NAME...}` a config problem quotes (interpolate.ts), closed or cut short: what follows its name is the file's.
const VARIABLE = /\$\{[^}"]*\}?/g

/**
 * A config problem's text (ConfigError) as redactString shows it, but a glued `name:value` hidden
 * only in a `${NAME:...}` it quotes (`${ADMIN_TOKEN:=abc}`): elsewhere a colon is as likely part of
 * a name (a route's `/a/:token:id`, an upstream `token:v2`), and a key glued to its value is hidden
 * where its problem is made (dedent-hint.ts).
 */
export function redactProblem (text: string): string {
  return redactString(text, false).replace(VARIABLE, hideGlued)
}

/** Every value of a header map (its names are kept: they say what is sent or matched). */
const redactHeaderMap = (map: object): Record<string, unknown> => Object.fromEntries(Object.keys(map).map(k => [k, REDACTED]))

/**
 * A deep copy of `value` safe to show (GET /config): every value at or below a secret-looking key
 * is replaced (a name is no such key: NAME_MAPS), every header value of a header map, and in
 * strings, URL user and password, secret-looking query and fragment values (`https://TOKEN@host`,
 * `?api_key=...`, `#access_token=...`) and connection-string passwords (`...;Password=...`).
 */
export function redactSecrets (value: unknown): unknown {
  return redact(value, false, false, false, undefined, new Map())
}

/** `text` as GET /config shows it at `keys` (a config path's, list indices left out): [redacted], a URL without its password. */
export function shownAt (keys: readonly string[], text: string): string {
  let shown = redactSecrets(keys.reduceRight<unknown>((value, key) => ({ [key]: value }), text))
  for (const key of keys) shown = (shown as Record<string, unknown>)[key]
  return shown as string
}

/**
 * Whether redactSecrets hides a string at `keys` (a config path's keys, list indices left out):
 * `["admin", "token"]`, `["routes", "plugins", "request-headers", "set", "x-anything"]`.
 */
export function hiddenAt (keys: readonly string[]): boolean {
  return shownAt(keys, 'x') === REDACTED
}

// A key holding a value, its colon missing (`password SECRET`, `token=SECRET`): a name, then the value.
const SPACED_KEY = /^([^\s=:]+)(\s+|\s*=\s*)(\S[\s\S]*)$/
// The same, or glued to its value (`password:SECRET`: a problem of its own says so, dedent-hint.ts).
const CREDENTIAL_KEY = /^([^\s=:]+)(\s+|\s*[=:]\s*)(\S[\s\S]*)$/

/** Of a key written with no value (shownKey): the keys the config knows, and whether a key beside it names a secret. */
export interface EmptyKey { readonly known: ReadonlySet<string>, readonly besideSecret: () => boolean }

/** Whether a key names a secret (`token`, `clientSecret`, `jwt-auth`): a key beside it with no value may be part of its value. */
export const namesSecret = (key: string): boolean => secretName(key, TEXT_WORDS)

/**
 * A config key as a problem's path shows it, `parents` the keys above it (list indices left out). A
 * secret written without its colon is read as a key with no value (`{ password SECRET }`): the
 * rest of a key starting with a secret's name and a space or `=` is shown as GET /config shows that
 * name's value (`password [redacted]`, a webhook's URL without its path). A key with no value none of
 * the config's (`ifEmpty()`) may be a secret or part of one (`{ token: abc,SECRET }` splits at the
 * comma, `jwt-auth: { SECRET }`): under a consumer's credentials, in a header map, in the map of a key
 * naming a secret or beside one, it is hidden whole, but for one starting with a known name or a
 * secret's (`password:[redacted]`, `Signature=[redacted]`). Elsewhere it is shown (a typo's hint names it), but
 * for what comes before an @ in it (`[redacted]@host`).
 */
export function shownKey (parents: readonly string[], key: string, ifEmpty?: () => EmptyKey | undefined): string {
  const empty = ifEmpty?.()
  const parent = parents[parents.length - 1] ?? ''
  if (empty !== undefined && !empty.known.has(key) &&
    (parents[1] === 'credentials' || HEADER_MAPS.has(parent) || namesSecret(parent) || empty.besideSecret())) {
    const m = CREDENTIAL_KEY.exec(key)
    const name = m?.[1] ?? ''
    return m !== null && (empty.known.has(name) || namesSecret(name)) ? `${name}${m[2] as string}${shownAt([...parents, name], m[3] as string)}` : REDACTED
  }
  const m = SPACED_KEY.exec(key)
  // The rest of a URL cut at its password's comma in { } (`url: redis://:pa55,w0rd@h`): up to its @ may be the password.
  if (m === null) return empty !== undefined && !empty.known.has(key) && key.includes('@') ? hideUrlSecrets(key) : key
  const [, name, sep, rest] = m as unknown as [string, string, string, string]
  const value = shownAt([...parents, name], rest)
  // A header map hides every value, its names shown: one saying nothing of a secret (`x tenant`) is a name.
  return `${name}${sep}${value === REDACTED && HEADER_MAPS.has(parent) && !namesSecret(name) ? rest : value}`
}

/** Shorter hidden values are not looked for in text: a short one (`pin: '1234'`) is as likely a port or a count there. */
const MIN_SCRUBBED = 6

/**
 * The values redactSecrets hides whole in `value` because their own key names a secret (strings and
 * numbers, 6 characters or more), the longest first: what an error about that config (a plugin's
 * setup quoting its key) must not show. Not a header value under a name that is no credential's
 * (`x-service: payments`), nor a consumer's basic-auth `username`: ordinary words, hidden only for
 * where they are, would be scrubbed from any text.
 */
export function hiddenValues (value: unknown): string[] {
  const found = new Set<string>()
  // The copies walked: redact makes one of a map or list for each key it is under, so one aliased on
  // many routes is walked once (a list's items are told of by `key` alone: secretValue of a list).
  const walked = new Set<object>()
  // `key`: the nearest key (a list's, for its items), `atKey`: the value under it.
  const walk = (given: unknown, shown: unknown, key?: string, atKey?: unknown): void => {
    if (shown !== null && typeof shown === 'object') {
      if (walked.has(shown)) return
      walked.add(shown)
    }
    if (shown === REDACTED && (typeof given === 'string' || typeof given === 'number')) {
      if (String(given).length >= MIN_SCRUBBED && key !== undefined && secretValue(key, atKey)) found.add(String(given))
    } else if (Array.isArray(given) && Array.isArray(shown)) {
      given.forEach((g, i) => walk(g, shown[i], key, atKey))
    } else if (isMap(given) && isMap(shown)) {
      for (const [k, g] of Object.entries(given)) walk(g, (shown as Record<string, unknown>)[k], k, g)
    }
  }
  walk(value, redactSecrets(value))
  return [...found].sort((a, b) => b.length - a.length)
}

/**
 * A function replacing each of `secrets` (hiddenValues), as written or JSON-escaped, by [redacted]
 * wherever it occurs in a text, inside a longer word too (`Bearer%20<key>`, `0x<key>`): a secret
 * shown is worse than a word of the text hidden (a password `upstream` hides that word). Every
 * place a secret covers is hidden, of overlapping ones too (`<key>` glued to a secret starting with
 * its end showed that one but for its start), as one [redacted]. Each place is looked up by its
 * first characters, then once for each length of secret starting so: time linear in the text,
 * however many secrets share a prefix (20,000 `sk_live_` keys tried one by one took 6 s over 5,000
 * near-misses). `cut`: the text was cut from a longer one: an end that starts a secret is hidden too.
 */
export function hidingValues (secrets: readonly string[]): (text: string, cut?: boolean) => string {
  // Each as JSON writes it too: a check or setup quoting one with JSON.stringify escapes its " and \.
  const given = [...new Set(secrets.flatMap(s => [s, JSON.stringify(s).slice(1, -1)]))].filter(s => s !== '')
  if (given.length === 0) return text => text
  const head = given.reduce((n, s) => Math.min(n, s.length), MIN_SCRUBBED)
  // The lengths of the secrets starting with each head, longest first; the secrets of each length.
  const lengths = new Map<string, number[]>()
  const ofLength = new Map<number, Set<string>>()
  for (const s of given) {
    const list = lengths.get(s.slice(0, head))
    if (list === undefined) lengths.set(s.slice(0, head), [s.length])
    else if (!list.includes(s.length)) list.push(s.length)
    const same = ofLength.get(s.length)
    if (same === undefined) ofLength.set(s.length, new Set([s]))
    else same.add(s)
  }
  for (const list of lengths.values()) list.sort((a, b) => b - a)
  const firsts = new Set(given.map(s => s.charCodeAt(0)))
  // For a cut text's end: sorted, the secrets longer than a text and starting with it follow it.
  const sorted = given.toSorted()
  const longest = given.reduce((n, s) => Math.max(n, s.length), 0)
  const starts = (end: string): boolean => {
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((sorted[mid] as string) <= end) lo = mid + 1
      else hi = mid
    }
    return sorted[lo]?.startsWith(end) === true
  }
  return (text, cut = false) => {
    let out = ''
    let from = 0
    // The run of hidden places being read: from `start` up to `end` (0, 0: none).
    let start = 0
    let end = 0
    for (let i = 0; i < text.length; i++) {
      if (!firsts.has(text.charCodeAt(i))) continue
      // Where hiding from i must reach: the longest secret there (only one reaching past the run
      // matters: the run's places are hidden already), or a cut text's end that starts a secret.
      let reach = 0
      const n = i + head > text.length ? undefined : lengths.get(text.slice(i, i + head))?.find(len => i + len <= end || ofLength.get(len)?.has(text.slice(i, i + len)))
      if (n !== undefined) reach = i + n
      if (cut && reach < text.length && text.length - i < longest && starts(text.slice(i))) reach = text.length
      if (reach <= end) continue
      if (i >= end) {
        if (end > start) out += text.slice(from, start) + REDACTED
        from = end
        start = i
      }
      end = reach
    }
    if (end === 0) return text
    return out + text.slice(from, start) + REDACTED + text.slice(end)
  }
}

/**
 * `value` with each of `secrets` (hiddenValues) replaced by [redacted] in its strings, and what
 * redactSecrets hides in any string (URL passwords, secret query values, `Password=` pairs): a text,
 * or an error to log, copied with its prototype, own data properties (cause, stack included) and
 * their flags. A PluginSetupError's `route "r"` and `plugin p:` are names, kept as they are.
 */
export function scrubbed<T> (value: T, secrets: readonly string[]): T {
  const kept = value instanceof PluginSetupError ? [`route "${value.route}"`, `plugin ${value.plugin}:`] : []
  const hide = hidingValues(secrets)
  const scrub = (text: string): string => redactString(hide(text))
  const keeping = (text: string, i: number): string => i === kept.length ? scrub(text) : text.split(kept[i] as string).map(part => keeping(part, i + 1)).join(kept[i])
  const copies = new Map<object, unknown>()
  const copy = (v: unknown): unknown => {
    if (typeof v === 'string') return keeping(v, 0)
    if (v === null || typeof v !== 'object') return v
    if (copies.has(v)) return copies.get(v)
    const out: object = Array.isArray(v) ? [] : Object.create(Object.getPrototypeOf(v) as object | null) as object
    copies.set(v, out)
    // A getter's value is left out: it may compute the secret. But an error's stack, V8's own
    // accessor on Node 24 (a data property on Node 20), read as text.
    for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(v))) {
      if ('value' in d) Object.defineProperty(out, key, { ...d, value: copy(d.value) })
      else if (key === 'stack' && v instanceof Error && typeof v.stack === 'string') Object.defineProperty(out, key, { value: copy(v.stack), writable: true, configurable: true, enumerable: d.enumerable })
    }
    return out
  }
  return copy(value) as T
}

/**
 * `secret`: under a secret-looking key; `names`: `value`'s keys are names (a NAME_MAPS map); `hook`:
 * under a webhook's key, URLs show their host only; `parent`: the key `value` is under, or its list is.
 * `done`: the copies made of each map and list, by the arguments above: one aliased on 5,500 routes (one
 * JS object, yaml-aliases.ts) is copied once, the cost following the file, not its expansion.
 */
function redact (value: unknown, secret: boolean, names: boolean, hook: boolean, parent: string | undefined, done: Map<string, Map<object, unknown>>): unknown {
  if (value !== null && typeof value === 'object') {
    const context = `${+secret}${+names}${+hook}${parent ?? ''}`
    const copies = done.get(context) ?? done.set(context, new Map()).get(context) as Map<object, unknown>
    if (copies.has(value)) return copies.get(value)
    const copy = Array.isArray(value)
      ? value.map(v => redact(v, secret, false, hook, parent, done))
      : Object.fromEntries(Object.entries(value).map(([k, v]) => {
        if (!names && HEADER_MAPS.has(k) && isMap(v)) return [k, redactHeaderMap(v)]
        // A name exempts the settings under it, not a value given under it.
        const named = (names && isMap(v)) || (k === 'cookie' && typeof v === 'string' && COOKIE_NAMED.has(parent ?? ''))
        // A plugin named `slack-webhook` too: hiding a URL's path costs little.
        const hooked = hook || words(k).some(w => HOOK_WORD.test(w))
        return [k, redact(v, secret || (!named && secretValue(k, v)), !names && NAME_MAPS.has(k) && isMap(v), hooked, k, done)]
      }))
    copies.set(value, copy)
    return copy
  }
  if (secret) return REDACTED
  if (typeof value !== 'string') return value
  return hook ? redactString(value).replace(URL_PATH, `$1/${REDACTED}`) : redactString(value)
}

