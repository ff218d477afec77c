import type { PluginConfigProblem } from '../../src/index.ts'
import { HMAC, type JwtAuthConfig } from './schema.ts'

const isHmac = (a: string): boolean => (HMAC as readonly string[]).includes(a)

/** Whether the config gives keys itself (keys, jwksFile). */
export const hasStaticKeys = (config: JwtAuthConfig): boolean => config.keys !== undefined || config.jwksFile !== undefined

/** Where remote keys come from: jwksUri, else the issuer's discovery document, but only without a secret (the issuer is then only checked in claims). */
export const remoteKeysUrl = (config: JwtAuthConfig): string | undefined => config.jwksUri ?? (config.secret === undefined ? config.issuer : undefined)

/**
 * What a jwt-auth config could never verify with, found at load (the schema asks for some source
 * of keys); setup then assumes none of it. Whether static keys fit any algorithm is known only
 * once they are parsed (setup).
 */
export function checkJwtAuth (config: JwtAuthConfig): PluginConfigProblem[] {
  const isStatic = hasStaticKeys(config)
  if (isStatic && config.jwksUri !== undefined) return [{ path: ['jwksUri'], message: 'not with static keys (keys, jwksFile): one source of keys' }]
  const keys = isStatic || remoteKeysUrl(config) !== undefined
  const algorithms = config.algorithms ?? []
  const problems: PluginConfigProblem[] = []
  const hmac = algorithms.filter(isHmac)
  if (hmac.length > 0 && config.secret === undefined) problems.push({ path: ['algorithms'], message: `${hmac.join(', ')} need secret` })
  const asymmetric = algorithms.filter(a => !isHmac(a))
  if (asymmetric.length > 0 && !keys) problems.push({ path: ['algorithms'], message: `${asymmetric.join(', ')} need issuer, jwksUri, keys or jwksFile` })
  return problems
}
