/** What stands for a hidden secret in anything shown: GET /config, config errors, logs. */
export const REDACTED = '[redacted]'

// In text, scheme:// then everything up to the last @ before the path, query or a space: the
// userinfo as a URL parser takes it (a password holding @ or # included: they are often left unencoded).
// A match starts only where a run of scheme characters does, its scheme at the run's first letter: one
// starting at each letter (\b) scanned a client's `a.a.a…@` request target once per `a`, quadratic
// (a 16 KB one cost ~150 ms of the event loop per request).
const USERINFO = /(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/)[^\s/?@]*(?:@[^\s/?@]*)*@/gi
// A string that is one URL (a config value): everything up to its last @, whatever it holds (a
// password with an unencoded space, ? or /); an @ in its path or query hides more, never less.
const WHOLE_URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[\s\S]*@/i

/** `text` with the userinfo (user and password) of every URL in it replaced. */
export function hideUserinfo (text: string): string {
  if (!text.includes('@')) return text
  return WHOLE_URL_USERINFO.test(text) ? text.replace(WHOLE_URL_USERINFO, `$1${REDACTED}@`) : text.replace(USERINFO, `$1${REDACTED}@`)
}

// One URL as written, maybe mistyped (no scheme, "http:/", "htp://"): after the scheme and its
// slashes, if any, everything up to the last @, whatever comes between (a password may hold an
// unencoded space, ? # / : or @, the very characters a message about it asks to encode): an @ in
// the path or query hides more than the userinfo, never less. Then every query value (a
// parameter without a name, ?<token>, whole).
const WRITTEN_USERINFO = /^((?:[a-z][a-z0-9+.-]*:(?=\/))?\/*)[\s\S]*@/i
const QUERY_VALUE = /([?&])(?:([^=&#\s]*)=[^&#\s]*|[^&#\s]+)/g

/**
 * A URL from the config, valid or not, safe to quote in a config problem: its user, password and
 * query values hidden (a target or store URL has no query worth showing; ?token= is a credential).
 */
export function hideUrlSecrets (url: string): string {
  const shown = url.replace(WRITTEN_USERINFO, `$1${REDACTED}@`)
  const q = shown.indexOf('?')
  return q === -1 ? shown : shown.slice(0, q) + shown.slice(q).replace(QUERY_VALUE, (_, sep: string, name?: string) => `${sep}${name === undefined ? '' : `${name}=`}${REDACTED}`)
}

/**
 * Of a URL with no @ whose port is not a number: said without quoting it, as that "port" may be the
 * start of a password cut at a comma in { } (`url: redis://:pa55,w0rd@h` reads as `redis://:pa55`).
 */
export const PORT_NOT_A_NUMBER = 'the port is not a number (if what follows its ":" is the start of a password holding a comma, quote the whole URL: in { } a comma ends a value)'
