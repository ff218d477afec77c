import type { HeaderMap, PluginReply } from '../../src/index.ts'
import { addCacheStatus, wholeTtl, type StatusParams } from './cache-status.ts'
import type { Entry } from './entry.ts'

/** The replies of one entry for a given Age and ttl (whole seconds): built on the first hit, sent again until either changes. */
interface Memo { readonly age: number, readonly ttl: number, readonly get: PluginReply, readonly head: PluginReply }

const memos = new WeakMap<Entry, Memo>()

/**
 * A hit's reply: the stored response with Age, Content-Length and Cache-Status. The headers only
 * change once a second, so a busy entry's reply is built once a second, not once a request (the
 * gateway copies reply headers, never changes them).
 */
export function hitReply (e: Entry, cacheName: string, age: number, method: string): PluginReply {
  const whole = Math.floor(age)
  const ttl = wholeTtl(e.lifetime - age)
  let m = memos.get(e)
  if (m === undefined || m.age !== whole || m.ttl !== ttl) {
    const headers = cachedHeaders(e, cacheName, whole, { hit: true, ttl })
    m = { age: whole, ttl, get: { status: e.status, headers, body: e.body }, head: { status: e.status, headers } }
    memos.set(e, m)
  }
  return method === 'HEAD' ? m.head : m.get
}

/** The stored response's headers as the cache sends them: with Age, Content-Length and Cache-Status. */
export function cachedHeaders (e: Entry, cacheName: string, age: number, status: StatusParams): HeaderMap {
  const headers: HeaderMap = { ...e.headers, age: String(Math.floor(age)) }
  if (e.status !== 204) headers['content-length'] = String(e.body.length)
  addCacheStatus(headers, cacheName, status)
  return headers
}
