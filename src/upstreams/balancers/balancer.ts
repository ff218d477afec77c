import type { GatewayRequest } from '../../plugins/contract.ts'
import type { Target } from '../target.ts'

/** What a balancer may look at in a request (the Exchange is one). */
export type BalancedRequest = Pick<GatewayRequest, 'clientIp' | 'headers' | 'path'>

/**
 * Chooses a target for a request among those usable: available now and not in `exclude` (the
 * targets a retried request already tried). Undefined when none is usable. Built over a fixed
 * list of targets; rebuilt when the list changes (DNS discovery).
 */
export interface Balancer {
  pick (req: BalancedRequest, now: number, exclude: readonly Target[] | undefined): Target | undefined
}

export function usable (t: Target, now: number, exclude: readonly Target[] | undefined): boolean {
  return t.available(now) && (exclude === undefined || !exclude.includes(t))
}
