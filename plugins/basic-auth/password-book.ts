import { createHmac, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Consumer, ConsumerCredential } from '../../src/index.ts'
import type { CheckQueue } from './check-queue.ts'
import { checkPassword, hashPassword, parseHash, DEFAULT_PARAMS, type PasswordHash } from './password-hash.ts'
import type { BasicCredential } from './schema.ts'

interface User { readonly consumer: Consumer, readonly hash: PasswordHash }

/** What check() gives when the queue of password checks is full: nothing was checked. */
export const BUSY = Symbol('busy')
/** What check() gives when the request ended while its check waited for a turn: nothing was checked. */
export const ENDED = Symbol('ended')

/**
 * Users and their password hashes, parsed at setup. An unknown user name costs one scrypt
 * derivation with the same parameters as the users' (a stand-in hash), so that timing does not
 * tell which user names exist. A user name and password that checked out are remembered for a
 * while (as an HMAC under a key of this book's own, as Apache's mod_authn_socache does), so that a
 * client sending them on each request pays scrypt once, not each time.
 */
export class PasswordBook {
  readonly #users = new Map<string, User>()
  readonly #standIn: Promise<PasswordHash>
  readonly #queue: CheckQueue
  readonly #key = randomBytes(32)
  readonly #verified = new LRUCache<string, Consumer>({ max: 10_000, ttl: 5 * 60_000 })

  constructor (credentials: ReadonlyArray<ConsumerCredential<BasicCredential>>, queue: CheckQueue) {
    for (const { consumer, credential } of credentials) this.#users.set(credential.username, { consumer, hash: parseHash(credential.password) })
    const first = this.#users.values().next().value as User | undefined
    this.#standIn = hashPassword('stand-in for unknown users', first?.hash.params ?? DEFAULT_PARAMS).then(parseHash)
    this.#queue = queue
  }

  /**
   * The consumer whose user name and password these are, undefined if none, BUSY, or ENDED (the
   * client left while the check waited: its turn goes to the next in line, no scrypt run for nobody).
   * Synchronous for a pair that checked out before: no promise on that path, the usual one.
   */
  check (username: string, password: string, request: { readonly ended: boolean }): Consumer | Promise<Consumer | undefined | typeof ENDED> | typeof BUSY {
    // The user name's length first: no other pair of user name and password gives the same text.
    const id = createHmac('sha256', this.#key).update(`${username.length}:${username}${password}`).digest('base64')
    const known = this.#verified.get(id)
    if (known !== undefined) return known
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
