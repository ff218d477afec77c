import type { Consumer, ConsumerCredential } from '../../src/index.ts'
import { checkPassword, hashPassword, parseHash, DEFAULT_PARAMS, type PasswordHash } from './password-hash.ts'
import type { BasicCredential } from './schema.ts'

interface User { readonly consumer: Consumer, readonly hash: PasswordHash }

/**
 * Users and their password hashes, parsed at setup. An unknown user name costs one scrypt
 * derivation with the same parameters as the users' (a stand-in hash), so that timing does not
 * tell which user names exist.
 */
export class PasswordBook {
  readonly #users = new Map<string, User>()
  readonly #standIn: Promise<PasswordHash>

  constructor (credentials: ReadonlyArray<ConsumerCredential<BasicCredential>>) {
    for (const { consumer, credential } of credentials) this.#users.set(credential.username, { consumer, hash: parseHash(credential.password) })
    const first = this.#users.values().next().value as User | undefined
    this.#standIn = hashPassword('stand-in for unknown users', first?.hash.params ?? DEFAULT_PARAMS).then(parseHash)
  }

  /** The consumer whose user name and password these are, or undefined. */
  async check (username: string, password: string): Promise<Consumer | undefined> {
    const user = this.#users.get(username)
    if (user === undefined) {
      await checkPassword(password, await this.#standIn)
      return undefined
    }
    return await checkPassword(password, user.hash) ? user.consumer : undefined
  }
}
