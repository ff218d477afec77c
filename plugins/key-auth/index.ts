import { definePlugin, type Consumer, type ConsumerCredential, type Store } from '../../src/index.ts'
import { authenticator, type Outcome } from '../shared/auth/authenticator.ts'
import { keyChallenge } from '../shared/auth/challenge.ts'
import { fail } from '../shared/auth/failure.ts'
import { compileLocations, type Location } from '../shared/auth/location.ts'
import { checkAuthRoute } from '../shared/auth/route-check.ts'
import { storeErrorLog } from '../shared/store-errors.ts'
import { KeyIndex, keyDigest } from './key-index.ts'
import { noKeysWarnings } from './no-keys.ts'
import { KEY_HEADER, KeyAuthSchema, KeyCredentialSchema, type KeyCredential } from './schema.ts'

const INVALID = fail(401, 'invalid_key', 'invalid_credentials', 'the API key is not valid')
const MALFORMED = fail(401, 'malformed', 'invalid_credentials', 'the API key is empty or sent more than once')
const STORE_DOWN = fail(503, 'store_error', 'auth_unavailable', 'API keys cannot be checked right now; try again later')

/** API keys from a header or query parameter, matched against consumers[].credentials.key-auth. */
export default definePlugin({
  name: 'key-auth',
  priority: 1250,
  schema: KeyAuthSchema,
  check: (config, route) => checkAuthRoute('key-auth', config, route),
  warnings: noKeysWarnings,
  credentials: {
    schema: KeyCredentialSchema,
    // Hashed, so that the same key written once as sha256: and once in clear is caught too.
    identities: credential => (credential as KeyCredential).keys.map(keyDigest)
  },
  setup (config, ctx) {
    // One index for the config's key-auth routes: the keys are the consumers', the same on every route.
    const index = ctx.shared('index', () => new KeyIndex(ctx.credentials as ReadonlyArray<ConsumerCredential<KeyCredential>>))
    const locations: Location[] = [{ header: config.header ?? KEY_HEADER }]
    if (config.query !== undefined) locations.push({ query: config.query })
    const location = compileLocations(locations, ctx)
    const store = config.store === undefined ? undefined : ctx.store(config.store)
    // Keys found in the store name a consumer under consumers:, or stand for one of that id.
    const consumerOf = (id: string): Consumer => ctx.consumers.get(id) ?? Object.freeze({ id, groups: Object.freeze([]), metadata: Object.freeze({}) })
    // Not one line per failed lookup: any client could flood the log while the store is unhealthy.
    const errors = store === undefined ? undefined
      : storeErrorLog(ctx, { store: store.name }, `key-auth: store "${store.name}" failed; keys not in the config are answered 503 while it does`)
    const lookUp = (hex: string): Promise<Outcome> => (store as Store).get(`key-auth:${hex}`).then(
      id => id === undefined || id.length === 0 ? INVALID : { consumer: consumerOf(id.toString('utf8')) },
      (err: unknown) => { errors?.report(err); return STORE_DOWN })
    const onRequest = authenticator({
      plugin: 'key-auth',
      challenge: keyChallenge(config.realm ?? 'portcullis'),
      anonymous: config.anonymous,
      hide: config.hideCredentials === true ? req => { location.remove(req) } : undefined,
      remove: location.removeUnjudged,
      removeFromQuery: location.removeFromQuery,
      extract: req => location.read(req),
      scrub: location.scrub,
      verify (key) {
        // An empty or repeated query key (see compileLocation): refused without asking the store.
        if (key === '') return MALFORMED
        const digest = KeyIndex.digest(key)
        const hex = digest.toString('hex')
        const consumer = index.find(digest, hex)
        if (consumer !== undefined) return { consumer }
        return store === undefined ? INVALID : lookUp(hex)
      }
    }, ctx)
    return { onRequest }
  }
})
