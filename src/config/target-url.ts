import { hideUserinfo } from './url-userinfo.ts'

/** Why a target URL is not an origin such as http://10.0.0.5:3000, naming the mistake. */
export function targetUrlMistake (value: unknown): string {
  const url = String(value)
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]
  if (scheme === undefined || (!url.includes('://') && /^[^/]*:\d+/.test(url) && !/^https?:/i.test(url))) {
    return `"${url}" has no scheme: write http://${url.replace(/^\/+/, '')} (or https://)`
  }
  if (!/^https?$/i.test(scheme)) return `"${url}": the scheme must be http:// or https://, not ${scheme}://`
  if (!url.startsWith(`${scheme}://`)) return `"${url}" is missing "://" after "${scheme}": write ${scheme}://${url.slice(scheme.length + 1).replace(/^\/+/, '')}`
  if (/^[^/?]*@/.test(url.slice(scheme.length + 3))) {
    return `"${hideUserinfo(url)}" has a user or password, which would not be sent: set an Authorization header with the request-headers plugin instead`
  }
  const rest = /^[^/?#]*([/?#].*)$/.exec(url.slice(scheme.length + 3))?.[1]
  if (url.slice(scheme.length + 3).length === 0) return `"${url}" has no host`
  if (rest !== undefined && rest !== '/') {
    return `"${url}" has a path ("${rest}") after the host and port: a target is an origin only; use the route's stripPrefix or rewrite for paths`
  }
  return `"${url}" must be an origin such as http://10.0.0.5:3000 (no path)`
}
