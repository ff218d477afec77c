import type { CacheConfig } from './schema.ts'

/** Where a request's responses are stored: the primary key, and the tag that invalidation and URL purges use. */
export interface RequestKey {
  /** `c:<route>:<path>?<query>#<host>|<headers>`, then `><upstream path>` when that is another path */
  readonly primary: string
  /** `u:<host><path>`: every stored query and header variant of the path. */
  readonly urlTag: string
}

type Headers = Readonly<Record<string, string | string[] | undefined>>
/**
 * `host`: the client's; `query`, `headers` and `upstreamPath`: the request's as they reach the
 * cache (plugins before it may have changed them).
 */
export type KeyBuilder = (path: string, query: string, host: string | string[] | undefined, headers: Headers, upstreamPath?: string) => RequestKey

/** Builds the key function of a route once, at setup: query filter, header list, host. */
export function compileKey (route: string, key: CacheConfig['key'] = {}): KeyBuilder {
  const withHost = key.host ?? true
  const include = key.query?.include === undefined ? undefined : new Set(key.query.include)
  const ignore = new Set(key.query?.ignore ?? [])
  const headerNames = (key.headers ?? []).map(h => h.toLowerCase())
  const prefix = `c:${route}:`
  return (path, query, clientHost, headers, upstreamPath = path) => {
    const host = withHost ? normalizeHost(clientHost) : ''
    let k = `${prefix}${path}?${query.length > 1 ? sortedQuery(query, include, ignore) : ''}#${host}|`
    for (const name of headerNames) { const v = headers[name]; k += `${name}=${v === undefined ? '' : String(v)}|` }
    // A route's rewrite follows from the path; a plugin's may not (a version header, say): both are kept apart.
    if (upstreamPath !== path) k += `>${upstreamPath}`
    return { primary: k, urlTag: `u:${host}${path}` }
  }
}

/**
 * The part of a primary key that a URL purge deletes by prefix (all header and Vary variants).
 * `path`: the URL's path normalized as requests' are (see normalizePath), as keys hold it.
 */
export function urlKeyPrefix (route: string, key: CacheConfig['key'] = {}, url: URL, path: string): string {
  const full = compileKey(route, { ...key, headers: [] })(path, url.search, url.host, {})
  return full.primary
}

export const normalizeHost = (host: string | string[] | undefined): string =>
  host === undefined ? '' : String(host).toLowerCase().replace(/:(80|443)$/, '')

function sortedQuery (query: string, include: Set<string> | undefined, ignore: Set<string>): string {
  const pairs: Array<{ name: string, pair: string }> = []
  for (const pair of query.slice(1).split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if ((include !== undefined && !include.has(name)) || ignore.has(name)) continue
    pairs.push({ name, pair })
  }
  // By name only, a stable sort: a=1&b=2 and b=2&a=1 are one entry, but sort=name&sort=-date and
  // sort=-date&sort=name stay two (the values of one name are a list, whose order may mean something).
  return pairs.sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0).map(p => p.pair).join('&')
}
