import type { createLocalJWKSet } from 'jose'

type LocalSet = ReturnType<typeof createLocalJWKSet>

/**
 * The last good key set of one remote source, and when it was fetched. ctx.shared lives as long
 * as one config: held here, the set outlives a reload, so that the next config's routes verify
 * with it at once (no fetch to wait for), and keep verifying while the provider is down.
 */
export class HeldKeys {
  set: LocalSet | undefined
  /** The set's usable keys, as JSON: what a new set is compared with. */
  keys = new Set<string>()
  /** The keys left out of the last set read (unusable), as JSON, installed or not: each is warned about once. */
  skipped = new Set<string>()
  /** Whether the last set read had more keys than are read: warned about once. */
  saidTooMany = false
  /** Bumped when a key disappears from the set: tokens verified with older sets must be verified again. */
  generation = 0
  /** When the set was fetched (performance.now()), and the response's max-age. */
  fetchedAt = -Infinity
  maxAgeMs: number | undefined
  #users = 0
  readonly #unused: () => void

  constructor (unused: () => void = () => {}) { this.#unused = unused }

  hold (): this { this.#users++; return this }

  release (): void { if (--this.#users === 0) this.#unused() }
}

/** Sources some config uses: bounded by the configs alive (the active one, and the one a reload replaces). */
const held = new Map<string, HeldKeys>()

/**
 * The key set held for a source (its JSON: issuer or jwksUri), for a config to release when it is
 * disposed. A reload sets up the next config before the active one is disposed: a source both use
 * keeps its set, and one that only the old config used is dropped.
 */
export function holdKeys (source: string): HeldKeys {
  let keys = held.get(source)
  if (keys === undefined) {
    keys = new HeldKeys(() => held.delete(source))
    held.set(source, keys)
  }
  return keys.hold()
}
