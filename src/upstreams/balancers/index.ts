import type { UpstreamConfig } from '../../config/schema.ts'
import type { Target } from '../target.ts'
import type { Balancer } from './balancer.ts'
import { ConsistentHash } from './consistent-hash.ts'
import { keyReader } from './hash-key.ts'
import { LeastConnections } from './least-connections.ts'
import { P2cEwma } from './p2c-ewma.ts'
import { RoundRobin } from './round-robin.ts'

export type { Balancer, BalancedRequest } from './balancer.ts'

/** The balancer an upstream's config asks for, over `targets`. */
export function createBalancer (config: UpstreamConfig, targets: readonly Target[]): Balancer {
  switch (config.balance ?? 'round-robin') {
    case 'least-connections': return new LeastConnections(targets)
    case 'p2c-ewma': return new P2cEwma(targets)
    // hashOn is required with consistent-hash (checkConfig)
    case 'consistent-hash': return new ConsistentHash(targets, keyReader(config.hashOn as NonNullable<UpstreamConfig['hashOn']>))
    default: return new RoundRobin(targets)
  }
}
