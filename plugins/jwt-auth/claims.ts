import { headerValue, type Consumer, type Consumers } from '../../src/index.ts'
import type { AuthFailure } from '../shared/auth/failure.ts'
import type { Verified } from '../shared/auth/authenticator.ts'
import { CLAIM_MISMATCH, insufficientScope, NO_CONSUMER, UNKNOWN_CONSUMER } from './failures.ts'
import type { JwtAuthConfig } from './schema.ts'

type Claims = Readonly<Record<string, unknown>>
type Scalar = string | number | boolean

/** A claim as a list of words: arrays as they are, strings split on spaces (scope, groups); nothing else holds any. */
function words (value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : typeof value === 'string' ? value.split(' ').filter(w => w !== '') : []
}

/**
 * What a verified token's claims must hold on this route (scopes, claim values) and what they
 * give (the consumer, forwarded headers); compiled once at setup.
 */
export function compileClaims (config: JwtAuthConfig, consumers: Consumers, consumerClaim: string): (claims: Claims) => Verified | AuthFailure {
  const scopes = config.scopes ?? []
  const needed = insufficientScope(scopes.join(' '))
  const required = Object.entries(config.claims ?? {}).map(([name, value]) => [name, Array.isArray(value) ? value : [value]] as [string, Scalar[]])
  const forward = Object.entries(config.forwardClaims ?? {}).map(([claim, header]) => [claim, header.toLowerCase()] as const)
  const { groupsClaim, requireConsumer } = config
  const noConsumer = NO_CONSUMER(consumerClaim)

  return claims => {
    for (const [name, accepted] of required) {
      const value = claims[name]
      const ok = Array.isArray(value) ? value.some(v => accepted.includes(v as Scalar)) : accepted.includes(value as Scalar)
      if (!ok) return CLAIM_MISMATCH(name)
    }
    if (scopes.length > 0) {
      const granted = new Set([...words(claims.scope), ...words(claims.scp)])
      if (!scopes.every(s => granted.has(s))) return needed
    }
    const id = claims[consumerClaim]
    if ((typeof id !== 'string' && typeof id !== 'number') || id === '') return noConsumer
    let consumer: Consumer | undefined = consumers.get(String(id))
    if (consumer === undefined) {
      if (requireConsumer === true) return UNKNOWN_CONSUMER
      const groups = groupsClaim === undefined ? [] : words(claims[groupsClaim]).filter((g): g is string => typeof g === 'string')
      consumer = Object.freeze({ id: String(id), groups: Object.freeze(groups), metadata: Object.freeze({}) })
    }
    const headers: Array<readonly [string, string]> = []
    for (const [claim, header] of forward) if (claims[claim] !== undefined) headers.push([header, headerValue(claims[claim])])
    return { consumer, claims, headers }
  }
}
