/** What stands for a hidden secret in anything shown: GET /config, config errors, logs. */
export const REDACTED = '[redacted]'

// scheme:// then everything up to the last @ before the path, query or a space: the userinfo
// as a URL parser takes it (a password holding @ or # included: they are often left unencoded).
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?@]*(?:@[^\s/?@]*)*@/gi

/** `text` with the userinfo (user and password) of every URL in it replaced. */
export function hideUserinfo (text: string): string {
  return text.includes('@') ? text.replace(USERINFO, `$1${REDACTED}@`) : text
}
