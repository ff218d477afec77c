import { normalizePath, type PluginAdmin, type PluginAdminReply, type Store } from '../../src/index.ts'
import { urlKeyPrefix } from './cache-key.ts'
import type { CacheConfig } from './schema.ts'

interface CachedRoute { readonly name: string, readonly store: Store, readonly key: CacheConfig['key'] }

/** Tags are namespaced so a surrogate key can never name a URL tag. */
export const surrogateTag = (key: string): string => `s:${key}`

/**
 * POST /plugins/cache/purge, one for the config (created from ctx.shared), over every cached route:
 * { "url": "https://host/path?q" } one URL (all its header and Vary variants), { "prefix": "/path/" }
 * every path under it, { "tag": "k" } every response that carried surrogate key k, { "all": true }.
 */
export class Purger {
  readonly #routes: CachedRoute[] = []

  constructor (admin: PluginAdmin) {
    admin.route('POST', '/purge', req => this.#purge(req.body))
  }

  add (route: CachedRoute): void { this.#routes.push(route) }

  async #purge (body: unknown): Promise<PluginAdminReply> {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>
    let work: Array<Promise<number>>
    // One selector, nothing else: {"tag": "x", "all": true} or a misspelt key beside a good one
    // would otherwise purge more, or less, than the operator meant.
    if (Object.keys(b).length !== 1) {
      return bad(ONE_OF)
    } else if (typeof b.url === 'string') {
      let url: URL
      try { url = new URL(b.url) } catch { return bad('"url" must be an absolute URL, such as https://api.example.com/items/7') }
      // Keyed as requests are: /caf%c3%a9, /%7Euser and //a are the paths /caf%C3%A9, /~user and /a.
      const path = normalizePath(url.pathname)
      if (path === undefined) return bad('"url" has a path requests are refused for (400 bad_path): nothing is cached under it')
      work = this.#routes.map(r => r.store.deletePrefix(urlKeyPrefix(r.name, r.key, url, path)))
    } else if (typeof b.prefix === 'string' && b.prefix.startsWith('/')) {
      work = this.#routes.map(r => r.store.deletePrefix(`c:${r.name}:${b.prefix as string}`))
    } else if (typeof b.tag === 'string' && b.tag !== '') {
      work = this.#stores().map(s => s.deleteTag(surrogateTag(b.tag as string)))
    } else if (b.all === true) {
      work = this.#stores().map(s => s.deletePrefix('c:'))
    } else {
      return bad(ONE_OF)
    }
    try {
      const counts = await Promise.all(work)
      return { body: { purged: counts.reduce((a, b) => a + b, 0) } }
    } catch (err) {
      return { status: 503, body: { error: 'store_unavailable', message: (err as Error).message } }
    }
  }

  #stores (): Store[] { return [...new Set(this.#routes.map(r => r.store))] }
}

const ONE_OF = 'send one of {"url": "<absolute URL>"}, {"prefix": "/path/"}, {"tag": "<surrogate key>"}, {"all": true}, alone'
const bad = (message: string): PluginAdminReply => ({ status: 400, body: { error: 'bad_purge', message } })
