import { hideUrlSecrets } from './url-userinfo.ts'

/** Why a target URL is not an origin such as http://10.0.0.5:3000, naming the mistake; its user, password and query values hidden. */
export function targetUrlMistake (value: unknown): string {
  const url = String(value)
  const shown = hideUrlSecrets(url)
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]
  // `$users_url`: a variable (interpolate.ts refuses one in capitals).
  const variable = /^\$([A-Za-z_]\w*)$/.exec(url)?.[1]
  if (variable !== undefined) return `"${shown}" is no URL: a variable is written \${${variable}}`
  if (scheme === undefined || (!url.includes('://') && /^[^/]*:\d+/.test(url) && !/^https?:/i.test(url))) {
    return `"${shown}" has no scheme: write http://${shown.replace(/^\/+/, '')} (or https://)`
  }
  if (!/^https?$/i.test(scheme)) return `"${shown}": the scheme must be http:// or https://, not ${scheme}://`
  if (!url.startsWith(`${scheme}://`)) return `"${shown}" is missing "://" after "${scheme}": write ${scheme}://${shown.slice(scheme.length + 1).replace(/^\/+/, '')}`
  // An @ anywhere, as hideUrlSecrets reads it: a user or password (one holding a space, / or ? included).
  if (url.includes('@', scheme.length + 3)) {
    return `"${shown}" has a user or password, which would not be sent: set an Authorization header with the request-headers plugin instead`
  }
  const rest = /^[^/?#]*([/?#].*)$/.exec(shown.slice(scheme.length + 3))?.[1]
  if (url.slice(scheme.length + 3).length === 0) return `"${shown}" has no host`
  if (rest !== undefined && rest !== '/') {
    return `"${shown}" has a path ("${rest}") after the host and port: a target is an origin only; use the route's stripPrefix or rewrite for paths`
  }
  return `"${shown}" must be an origin such as http://10.0.0.5:3000 (no path)`
}
