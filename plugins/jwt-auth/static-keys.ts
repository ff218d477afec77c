import { createLocalJWKSet, type JWK, type JWTVerifyGetKey } from 'jose'
import { algorithmsOf, readPublicKeys } from './public-keys.ts'

/** PEM (SPKI or certificate), JWK objects and a JWKS file, as one key set (checked at load: see readPublicKeys). */
export function staticKeySet (keys: ReadonlyArray<string | JWK>, jwksFile: string | undefined) {
  const { jwks, problems } = readPublicKeys(keys, jwksFile)
  const problem = problems[0]
  // Checked at load (checkJwtAuth): only a JWKS file changed since then gets here.
  if (problem !== undefined) throw new Error(`jwt-auth ${problem.path.length === 2 ? `keys[${String(problem.path[1])}]` : 'jwksFile'}: ${problem.message}`)
  // PEM keys carry no kid: they verify tokens whatever kid they name, unless a JWK has that kid.
  // A token without kid is tried with every key its alg fits, as jose does with a remote set
  // (a provider with one key may leave kid out, while its JWKS copied into a file names one).
  const kids = new Set(jwks.map(k => k.kid).filter(k => k !== undefined))
  const all = createLocalJWKSet({ keys: jwks })
  const keyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid !== undefined) })
  const unkeyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid === undefined) })
  const key: JWTVerifyGetKey = header => header.kid === undefined ? all({ alg: header.alg }) : kids.has(header.kid) ? keyed(header) : unkeyed({ alg: header.alg })
  return { key, algorithms: [...new Set(jwks.flatMap(algorithmsOf))] }
}
