import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Verified } from '../shared/auth/authenticator.ts'

interface Entry { readonly verified: Verified, readonly expMs: number, readonly generation: number }

/** Every entry counts one towards maxSize: the bound is in entries. */
const ONE = () => 1

/**
 * Tokens already verified, so that a hot token costs a hash and a lookup instead of a signature
 * check. Keyed by the token's SHA-256 (tokens themselves are not kept), bounded, and an entry is
 * never used past the token's exp, nor after a key was removed from the key set (generation).
 */
export class TokenCache {
  readonly #lru: LRUCache<string, Entry>

  constructor (max: number) {
    // maxSize, not max: lru-cache allocates its whole index for `max` entries up front (10,000
    // entries came to 160 kB a route); with maxSize it grows with the tokens actually kept.
    this.#lru = new LRUCache({ maxSize: max, sizeCalculation: ONE })
  }

  static key (token: string): string { return hash('sha256', token, 'base64') }

  get (key: string, generation: number): Verified | undefined {
    const entry = this.#lru.get(key)
    if (entry === undefined) return undefined
    if (entry.expMs <= Date.now() || entry.generation !== generation) { this.#lru.delete(key); return undefined }
    return entry.verified
  }

  set (key: string, verified: Verified, expSeconds: number, generation: number): void {
    const expMs = expSeconds * 1000
    // No TTL in the LRU: get() checks exp itself, and lru-cache's TTLs keep a clock with a timer
    // set and fired every millisecond on a busy route.
    if (expMs > Date.now()) this.#lru.set(key, { verified, expMs, generation })
  }
}
