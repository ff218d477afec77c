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
  /**
   * `roomOnly`: only among targets with a free connection slot (see Upstream.pick). `anyState`: available
   * or not (none is: Upstream.pick excludes all but the least bad).
   */
  pick (req: BalancedRequest, now: number, exclude: readonly Target[] | undefined, roomOnly?: boolean, anyState?: boolean): Target | undefined
}

export function usable (t: Target, now: number, exclude: readonly Target[] | undefined, roomOnly: boolean, anyState = false): boolean {
  return (!roomOnly || t.inFlight < t.capacity) && (anyState || t.available(now)) && (exclude === undefined || !exclude.includes(t))
}

/** Requests on a target: in flight and waiting for a slot (what load-aware balancers compare). */
export function load (t: Target): number {
  return t.inFlight + t.waiting.length
}
