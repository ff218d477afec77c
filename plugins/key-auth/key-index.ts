import { createHash, timingSafeEqual } from 'node:crypto'
import type { Consumer, ConsumerCredential } from '../../src/index.ts'
import type { KeyCredential } from './schema.ts'

const PREFIX = 'sha256:'

/** A stored key's SHA-256, hex: given as sha256:<hex>, or computed from the key itself. */
export function keyDigest (stored: string): string {
  return stored.startsWith(PREFIX) ? stored.slice(PREFIX.length) : createHash('sha256').update(stored, 'utf8').digest('hex')
}

interface Entry { readonly consumer: Consumer, readonly digest: Buffer }

/**
 * Every consumer's keys by SHA-256, built at setup. A presented key is hashed, looked up, and the
 * digests compared in constant time; keys themselves are never kept.
 */
export class KeyIndex {
  readonly #byDigest = new Map<string, Entry>()

  constructor (credentials: ReadonlyArray<ConsumerCredential<KeyCredential>>) {
    for (const { consumer, credential } of credentials) {
      for (const stored of credential.keys) {
        const hex = keyDigest(stored)
        this.#byDigest.set(hex, { consumer, digest: Buffer.from(hex, 'hex') })
      }
    }
  }

  /** The presented key's SHA-256. */
  static digest (key: string): Buffer { return createHash('sha256').update(key, 'utf8').digest() }

  find (digest: Buffer, hex: string): Consumer | undefined {
    const entry = this.#byDigest.get(hex)
    return entry !== undefined && timingSafeEqual(entry.digest, digest) ? entry.consumer : undefined
  }
}
