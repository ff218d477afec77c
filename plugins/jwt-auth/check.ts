import type { PluginConfigProblem } from '../../src/index.ts'
import { HMAC, type JwtAuthConfig } from './schema.ts'

const isHmac = (a: string): boolean => (HMAC as readonly string[]).includes(a)

/**
 * What a jwt-auth config could never verify with, found at load (the schema asks for some source
 * of keys); setup then assumes none of it. Whether static keys fit any algorithm is known only
 * once they are parsed (setup).
 */
export function checkJwtAuth (config: JwtAuthConfig): PluginConfigProblem[] {
  const isStatic = config.keys !== undefined || config.jwksFile !== undefined
  if (isStatic && config.jwksUri !== undefined) return [{ path: ['jwksUri'], message: 'not with static keys (keys, jwksFile): one source of keys' }]
  // As keySource has it: an issuer is a source of keys (its discovery document) only without a secret.
  const keys = isStatic || config.jwksUri !== undefined || (config.issuer !== undefined && config.secret === undefined)
  const algorithms = config.algorithms ?? []
  const problems: PluginConfigProblem[] = []
  const hmac = algorithms.filter(isHmac)
  if (hmac.length > 0 && config.secret === undefined) problems.push({ path: ['algorithms'], message: `${hmac.join(', ')} need secret` })
  const asymmetric = algorithms.filter(a => !isHmac(a))
  if (asymmetric.length > 0 && !keys) problems.push({ path: ['algorithms'], message: `${asymmetric.join(', ')} need issuer, jwksUri, keys or jwksFile` })
  return problems
}
