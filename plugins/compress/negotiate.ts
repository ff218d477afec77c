import { negotiate } from '@fastify/accept-negotiator'
import { LRUCache } from 'lru-cache'

const IDENTITY = 'identity'

/**
 * Picks the coding for an Accept-Encoding value, by q-value then server preference; `identity` when
 * none applies (no header, identity preferred, nothing acceptable). Results are cached per header
 * value: clients send few distinct ones.
 */
export class EncodingNegotiator {
  readonly #offered: readonly string[]
  readonly #refused: ReadonlyMap<string, RegExp>
  readonly #cache = new LRUCache<string, string>({ max: 512 })

  /** `offered`: codings in the server's order of preference. */
  constructor (offered: readonly string[]) {
    this.#offered = offered
    // accept-negotiator lets `*` stand for the first offered coding even when the header refuses
    // it (`br;q=0, *`): such a choice is checked against an explicit q=0 and the next one tried.
    this.#refused = new Map(offered.map(c => [c, new RegExp(`(?:^|,)\\s*${c}\\s*;\\s*q\\s*=\\s*0(?:\\.0{0,3})?\\s*(?:,|$)`, 'i')]))
  }

  negotiate (header: string | undefined): string {
    if (header === undefined || header === '') return IDENTITY
    let chosen = this.#cache.get(header)
    if (chosen === undefined) { chosen = this.#choose(header); this.#cache.set(header, chosen) }
    return chosen
  }

  #choose (header: string): string {
    const lower = header.toLowerCase()
    let offered = [...this.#offered, IDENTITY]
    for (;;) {
      const c = negotiate(lower, offered)
      if (c === null || c === IDENTITY) return IDENTITY
      if (!(this.#refused.get(c) as RegExp).test(lower)) return c
      offered = offered.filter(o => o !== c)
    }
  }
}
