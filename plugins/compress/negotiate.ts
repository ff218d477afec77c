import { negotiate } from '@fastify/accept-negotiator'
import { LRUCache } from 'lru-cache'
import { CODINGS } from './schema.ts'

const IDENTITY = 'identity'
// RFC 9110 8.4.1.3: a recipient should take x-gzip for gzip, in Accept-Encoding too.
const X_GZIP = /(^|[\s,])x-gzip(?=\s*(?:[;,]|$))/g
// RFC 9110 12.4.2.
const QVALUE = '(?:0(?:\\.\\d{0,3})?|1(?:\\.0{0,3})?)'

/** A header lower-cased, x-gzip read as gzip. */
const normalized = (header: string): string => header.toLowerCase().replace(X_GZIP, '$1gzip')

/**
 * Picks the coding for an Accept-Encoding value, by q-value then server preference; `identity` when
 * none applies (no header, identity preferred, nothing acceptable). Results are cached per header
 * value: clients send few distinct ones.
 */
export class EncodingNegotiator {
  readonly #offered: readonly string[]
  readonly #refused: ReadonlyMap<string, RegExp>
  readonly #cache = new LRUCache<string, string>({ max: 512 })
  readonly #accepted = new LRUCache<string, boolean>({ max: 512 })

  /** `offered`: codings in the server's order of preference. */
  constructor (offered: readonly string[]) {
    this.#offered = offered
    // accept-negotiator lets `*` stand for the first offered coding even when the header refuses
    // it (`br;q=0, *`), and reads q only as the last parameter: a choice is checked against a q=0
    // anywhere among the coding's parameters, or a q outside RFC 9110 12.4.2 (`q=0.0001`, `q=0.1e1`, `q`
    // alone: the client may have meant a refusal), and the next one tried.
    this.#refused = new Map(CODINGS.map(c => [c, new RegExp(`(?:^|,)\\s*${c}\\s*(?:;[^,]*)?;\\s*q\\s*(?:=\\s*(?:0(?:\\.0{0,3})?\\s*(?:[;,]|$)|(?!${QVALUE}\\s*(?:[;,]|$)))|(?:[;,]|$))`, 'i')]))
  }

  negotiate (header: string | undefined): string {
    if (header === undefined || header === '') return IDENTITY
    let chosen = this.#cache.get(header)
    if (chosen === undefined) { chosen = this.#choose(normalized(header)); this.#cache.set(header, chosen) }
    return chosen
  }

  /** Whether the header accepts `coding` (one of CODINGS), offered or not: an explicit q=0 is not overridden by `*`. */
  accepts (header: string | undefined, coding: string): boolean {
    if (header === undefined || header === '') return false
    const key = `${coding} ${header}`
    let yes = this.#accepted.get(key)
    if (yes === undefined) {
      const lower = normalized(header)
      yes = negotiate(lower, [coding]) !== null && !(this.#refused.get(coding) as RegExp).test(lower)
      this.#accepted.set(key, yes)
    }
    return yes
  }

  #choose (lower: string): string {
    let offered = [...this.#offered, IDENTITY]
    for (;;) {
      const c = negotiate(lower, offered)
      if (c === null || c === IDENTITY) return IDENTITY
      if (!(this.#refused.get(c) as RegExp).test(lower)) return c
      offered = offered.filter(o => o !== c)
    }
  }
}
