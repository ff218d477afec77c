import { createHmac, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import type { Consumer, ConsumerCredential } from '../../src/index.ts'
import type { CheckQueue } from './check-queue.ts'
import { checkPassword, hashPassword, parseHash, DEFAULT_PARAMS, type PasswordHash, type ScryptParams } from './password-hash.ts'
import type { BasicCredential } from './schema.ts'

interface User { readonly consumer: Consumer, readonly hash: PasswordHash }

/** What check() gives when the queue of password checks is full: nothing was checked. */
export const BUSY = Symbol('busy')
/** What check() gives when the request ended while its check waited for a turn: nothing was checked. */
export const ENDED = Symbol('ended')

/** scrypt's work: N·r·p block mixes. */
const work = (p: ScryptParams): number => 2 ** p.ln * p.r * p.p
const named = (p: ScryptParams): string => `ln=${p.ln},r=${p.r},p=${p.p}`

/**
 * Users and their password hashes, parsed at setup. An unknown user name costs one scrypt
 * derivation with the costliest user's parameters (a stand-in hash), so that timing does not
 * tell which user names exist; a user with cheaper parameters answers faster than an unknown
 * name, which no stand-in can help: that is warned about at setup. A user name and password that
 * checked out are remembered for a while (as an HMAC under a key of this book's own, as Apache's
 * mod_authn_socache does), so that a client sending them on each request pays scrypt once.
 */
export class PasswordBook {
  readonly #users = new Map<string, User>()
  readonly #standIn: Promise<PasswordHash>
  readonly #queue: CheckQueue
  readonly #key = randomBytes(32)
  readonly #verified = new LRUCache<string, Consumer>({ max: 10_000, ttl: 5 * 60_000 })

  constructor (credentials: ReadonlyArray<ConsumerCredential<BasicCredential>>, queue: CheckQueue, log: Logger) {
    for (const { consumer, credential } of credentials) this.#users.set(credential.username, { consumer, hash: parseHash(credential.password) })
    const params = [...this.#users.values()].map(u => u.hash.params)
    const costliest = params.reduce((a, b) => work(b) > work(a) ? b : a, params[0] ?? DEFAULT_PARAMS)
    this.#standIn = hashPassword('stand-in for unknown users', costliest).then(parseHash)
    // Awaited only by a check of an unknown user name (which then fails alone): never an unhandled rejection, that ends the process.
    this.#standIn.catch((err: unknown) => { log.error({ err, params: named(costliest) }, 'basic-auth: the stand-in hash for unknown user names failed; their checks fail') })
    this.#queue = queue
    const cheaper = [...this.#users].filter(([, u]) => work(u.hash.params) < work(costliest)).map(([name]) => name)
    if (cheaper.length > 0) {
      log.warn({ costliest: named(costliest), cheaper: cheaper.length, users: cheaper.slice(0, 10) },
        'basic-auth: password hashes of different scrypt costs: a user with a cheaper one answers faster than an unknown user name, so timing tells that the name exists; hash every password with the same --cost')
    }
  }

  /** What a user name and password are remembered by once they checked out. */
  idOf (username: string, password: string): string {
    // The user name's length first: no other pair of user name and password gives the same text.
    return createHmac('sha256', this.#key).update(`${username.length}:${username}${password}`).digest('base64')
  }

  /** The consumer of a pair (by idOf) that checked out before: synchronous, no scrypt, the usual path. */
  remembered (id: string): Consumer | undefined {
    return this.#verified.get(id)
  }

  /**
   * Checks a pair (`id` its idOf) with scrypt: the consumer whose user name and password these are,
   * undefined if none, BUSY, or ENDED (the client left while the check waited: its turn goes to the
   * next in line, no scrypt run for nobody).
   */
  check (id: string, username: string, password: string, request: { readonly ended: boolean }): Promise<Consumer | undefined | typeof ENDED> | typeof BUSY {
    return this.#queue.run(async () => {
      if (request.ended) return ENDED
      const user = this.#users.get(username)
      if (user === undefined) {
        await checkPassword(password, await this.#standIn)
        return undefined
      }
      if (!await checkPassword(password, user.hash)) return undefined
      this.#verified.set(id, user.consumer)
      return user.consumer
    }) ?? BUSY
  }
}
