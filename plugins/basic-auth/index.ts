import { definePlugin, toMs, workerPlace, type Consumer, type ConsumerCredential, type PluginSetupContext } from '../../src/index.ts'
import { authenticator, type Outcome } from '../shared/auth/authenticator.ts'
import { basicChallenge } from '../shared/auth/challenge.ts'
import { fail } from '../shared/auth/failure.ts'
import { compileLocation } from '../shared/auth/location.ts'
import { checkAuthRoute } from '../shared/auth/route-check.ts'
import { BUSY, ENDED, PasswordBook } from './password-book.ts'
import { CheckQueue, checkConcurrency } from './check-queue.ts'
import { FailureLimit } from './failure-limit.ts'
import { storeErrorLog } from '../shared/store-errors.ts'
import { BasicAuthSchema, BasicCredentialSchema, FAILURE_DEFAULTS, type BasicCredential, type FailuresConfig } from './schema.ts'

const INVALID = fail(401, 'invalid_password', 'invalid_credentials', 'the user name or password is not valid')
const MALFORMED = fail(401, 'malformed', 'invalid_credentials', 'the Basic credentials are malformed (base64 of user:password)')
const BUSY_FAILURE = fail(503, 'busy', 'auth_busy', 'too many password checks are waiting; try again shortly')
// Never sent (nobody is left to get it): counted and logged so that a flood of departed clients shows.
const ENDED_FAILURE = fail(401, 'request_ended', 'invalid_credentials', 'the request ended before its password was checked')
/** Password checks that may wait for a turn (some seconds of scrypt at the default cost). */
const MAX_WAITING = 64

// Fatal: invalid bytes as U+FFFD made `caf\xff` and `caf\x80` one password with `caf\uFFFD`.
// A BOM kept: it is no part of the user name to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** `bytes` as UTF-8, or undefined when they are not. */
function strictUtf8 (bytes: Buffer): string | undefined {
  try { return utf8.decode(bytes) } catch { return undefined }
}

const outcome = (consumer: Consumer | undefined | typeof BUSY | typeof ENDED): Outcome =>
  consumer === undefined ? INVALID : consumer === BUSY ? BUSY_FAILURE : consumer === ENDED ? ENDED_FAILURE : { consumer }

/**
 * One per store, window and limit for the config's routes: an address the store said is at its
 * limit is then known to each of them.
 */
function failureLimit (failures: Required<FailuresConfig>, ctx: PluginSetupContext): FailureLimit {
  const store = ctx.store(failures.store)
  const windowMs = toMs(failures.window)
  return ctx.shared(`failures ${store.name} ${windowMs} ${failures.limit}`, () => {
    const workers = workerPlace()
    // Every worker builds the config: the first says it, once per config.
    if (store.type === 'memory' && workers?.index === 0) {
      ctx.log.warn({ store: store.name, limit: failures.limit, window: failures.window, workers: workers.count },
        `basic-auth: failed password checks are counted per worker in memory store "${store.name}": a client address gets up to ${workers.count} × ${failures.limit} per window; use a Redis store for failures.store`)
    }
    // One for every window and limit on the store: a line per 10 s, not one each.
    const errors = storeErrorLog(ctx, { store: store.name }, `basic-auth: store "${store.name}" failed; failed password checks are not counted nor limited while it does`)
    return new FailureLimit(store, { limit: failures.limit, windowMs, counts: o => o === INVALID }, errors)
  })
}

/** RFC 7617 Basic credentials, checked against consumers' scrypt password hashes. */
export default definePlugin({
  name: 'basic-auth',
  priority: 1100,
  schema: BasicAuthSchema,
  check: (config, route) => checkAuthRoute('basic-auth', config, route),
  credentials: {
    schema: BasicCredentialSchema,
    identities: credential => [(credential as BasicCredential).username]
  },
  setup (config, ctx) {
    // One book for the config's basic-auth routes (the consumers are the same): one stand-in hash,
    // one memory of checked passwords, one queue for the thread pool they share.
    const book = ctx.shared('book', () => new PasswordBook(ctx.credentials as ReadonlyArray<ConsumerCredential<BasicCredential>>, new CheckQueue(checkConcurrency(), MAX_WAITING), ctx.log))
    const limit = config.failures === false ? undefined : failureLimit({ ...FAILURE_DEFAULTS, ...config.failures }, ctx)
    const location = compileLocation({ header: 'authorization', scheme: 'Basic' })
    const onRequest = authenticator({
      plugin: 'basic-auth',
      challenge: basicChallenge(config.realm ?? 'portcullis'),
      anonymous: config.anonymous,
      hide: config.hideCredentials === true ? req => { location.remove(req) } : undefined,
      remove: location.removeUnjudged,
      extract: req => location.read(req),
      scrub: location.scrub,
      verify (encoded, req) {
        // Canonical base64 only (RFC 4648: padded, unused bits zero): Buffer.from reads `dTpwdzE`,
        // `dTpwdzF=` as `dTpwdzE=`, spellings a limit by header:authorization would count apart.
        // Then UTF-8 only (the charset the challenge names).
        const bytes = Buffer.from(encoded, 'base64')
        const decoded = bytes.toString('base64') === encoded ? strictUtf8(bytes) : undefined
        const colon = decoded === undefined ? -1 : decoded.indexOf(':')
        if (decoded === undefined || colon < 1) return MALFORMED
        const username = decoded.slice(0, colon)
        const password = decoded.slice(colon + 1)
        const id = book.idOf(username, password)
        const known = book.remembered(id)
        // An address at its limit is refused even a pair that checked out: a right password answers as a wrong one.
        if (known !== undefined) return limit?.blocked(req) ?? { consumer: known }
        const check = (): Outcome | Promise<Outcome> => {
          const checked = book.check(id, username, password, req)
          return checked instanceof Promise ? checked.then(outcome) : outcome(checked)
        }
        return limit === undefined ? check() : limit.attempt(req, check)
      }
    }, ctx)
    return { onRequest }
  }
})
