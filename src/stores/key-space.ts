import type { RedisStoreSettings } from './redis-store.ts'

/**
 * What decides where a Redis store's keys live: the server (its URL less the credentials; the
 * sentinels and the primary's name; the cluster's nodes), the database and the key prefix. Two
 * stores of the same key space hold the same keys, whatever their timeouts, credentials or TLS.
 * Lists are sorted: their order names no other place.
 */
export function redisKeySpace (s: RedisStoreSettings): string {
  return JSON.stringify([server(s), s.db ?? 0, s.keyPrefix])
}

function server (s: RedisStoreSettings): unknown {
  if (s.cluster !== undefined) return ['cluster', [...s.cluster].sort()]
  if (s.sentinels !== undefined) return ['sentinels', [...s.sentinels].sort(), s.name]
  const url = new URL(s.url ?? 'redis://127.0.0.1:6379')
  url.username = ''
  url.password = ''
  url.searchParams.delete('username')
  url.searchParams.delete('password')
  return url.href
}
