import { METHODS } from 'node:http'
import { isIP } from 'node:net'
import type { GatewayConfig } from './schema.ts'
import { toMs } from './duration.ts'
import { didYouMean } from './suggest.ts'
import { statusRange } from '../upstreams/settings.ts'

type Add = (path: Array<string | number>, message: string) => void

/** Upstream checks the schema cannot express: key combinations, ranges, duplicate targets. */
export function checkUpstreams (upstreams: GatewayConfig['upstreams'], add: Add, skip: ReadonlySet<string>): void {
  for (const [name, u] of Object.entries(upstreams)) {
    if (skip.has(name)) continue
    const here = (...rest: Array<string | number>) => ['upstreams', name, ...rest]
    if (u.balance === 'consistent-hash' && u.hashOn === undefined) add(here('balance'), 'consistent-hash needs hashOn: { header: NAME }, { cookie: NAME }, { clientIp: true } or { path: true }')
    if (u.hashOn !== undefined && u.balance !== 'consistent-hash') add(here('hashOn'), 'hashOn is only used with balance: consistent-hash')

    const seen = new Map<string, number>()
    u.targets.forEach((t, i) => {
      const origin = new URL(t.url)
      const first = seen.get(origin.origin)
      if (first !== undefined) add(here('targets', i, 'url'), `${origin.origin} is already targets[${first}]`)
      else seen.set(origin.origin, i)
      if (t.resolve === 'dns' && isIP(origin.hostname.replace(/^\[(.*)\]$/, '$1')) !== 0) add(here('targets', i, 'resolve'), `"${origin.hostname}" is an address, not a name to resolve`)
      if (t.dnsInterval !== undefined && t.resolve !== 'dns') add(here('targets', i, 'dnsInterval'), 'dnsInterval is only used with resolve: dns')
    })

    const h = u.healthCheck
    if (h !== undefined) {
      if (h.timeout !== undefined && toMs(h.timeout) >= (h.interval === undefined ? 5_000 : toMs(h.interval))) add(here('healthCheck', 'timeout'), 'must be shorter than healthCheck.interval')
      h.expectStatus?.forEach((s, i) => {
        const [lo, hi] = statusRange(s)
        if (lo > hi) add(here('healthCheck', 'expectStatus', i), `range "${s}" is empty`)
      })
    }
    if (u.passive !== undefined && u.passive !== false && u.passive.baseEjection !== undefined && u.passive.maxEjection !== undefined &&
        toMs(u.passive.baseEjection) > toMs(u.passive.maxEjection)) add(here('passive', 'maxEjection'), 'must not be shorter than baseEjection')
    if (u.retries !== undefined && u.retries !== false) {
      u.retries.methods?.forEach((m, i) => {
        if (!METHODS.includes(m.toUpperCase())) add(here('retries', 'methods', i), `unknown HTTP method "${m}"${didYouMean(m.toUpperCase(), METHODS)}`)
      })
    }
  }
}
