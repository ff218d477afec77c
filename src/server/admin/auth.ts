import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * Whether an Authorization header carries `Bearer <token>`. Compares fixed-length digests in
 * constant time, so neither the token's content nor its length leaks through timing.
 */
export function bearerMatches (header: string | undefined, token: string): boolean {
  if (header === undefined) return false
  const m = /^Bearer\s+(.+)$/i.exec(header.trim())
  return m !== null && timingSafeEqual(digest(m[1] as string), digest(token))
}
