import { definePlugin, type ConsumerCredential } from '../../src/index.ts'
import { authenticator } from '../shared/auth/authenticator.ts'
import { keyChallenge } from '../shared/auth/challenge.ts'
import { fail } from '../shared/auth/failure.ts'
import { compileLocations, type Location } from '../shared/auth/location.ts'
import { KeyIndex, keyDigest } from './key-index.ts'
import { KeyAuthSchema, KeyCredentialSchema, type KeyCredential } from './schema.ts'

const INVALID = fail(401, 'invalid_key', 'invalid_credentials', 'the API key is not valid')

/** API keys from a header or query parameter, matched against consumers[].credentials.key-auth. */
export default definePlugin({
  name: 'key-auth',
  priority: 1250,
  schema: KeyAuthSchema,
  credentials: {
    schema: KeyCredentialSchema,
    // Hashed, so that the same key written once as sha256: and once in clear is caught too.
    identities: credential => (credential as KeyCredential).keys.map(keyDigest)
  },
  setup (config, ctx) {
    const index = new KeyIndex(ctx.credentials as ReadonlyArray<ConsumerCredential<KeyCredential>>)
    const locations: Location[] = [{ header: config.header ?? 'x-api-key' }]
    if (config.query !== undefined) locations.push({ query: config.query })
    const location = compileLocations(locations)
    const hide = config.hideCredentials === true
    const onRequest = authenticator({
      plugin: 'key-auth',
      challenge: keyChallenge(config.realm ?? 'portcullis'),
      anonymous: config.anonymous,
      extract: req => location.read(req),
      verify (key, req) {
        if (hide) location.remove(req)
        const consumer = index.find(key)
        return consumer === undefined ? INVALID : { consumer }
      }
    }, ctx)
    return { onRequest }
  }
})
