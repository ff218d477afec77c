import type { JWK } from 'jose'
import { keySet } from './key-set.ts'
import { algorithmsOf, readPublicKeys } from './public-keys.ts'

/** PEM (SPKI or certificate), JWK objects and a JWKS file, as one key set (checked at load: see readPublicKeys). */
export function staticKeySet (keys: ReadonlyArray<string | JWK>, jwksFile: string | undefined, onMissingKid?: () => void) {
  const { jwks, problems } = readPublicKeys(keys, jwksFile)
  const problem = problems[0]
  // Checked at load (checkJwtAuth): only a JWKS file changed since then gets here.
  if (problem !== undefined) throw new Error(`jwt-auth ${problem.path.length === 2 ? `keys[${String(problem.path[1])}]` : 'jwksFile'}: ${problem.message}`)
  // PEM keys carry no kid: they verify tokens whatever kid they name, unless a JWK has that kid.
  return { key: keySet(jwks, true, onMissingKid), algorithms: [...new Set(jwks.flatMap(algorithmsOf))] }
}
