import { Type } from '@sinclair/typebox'
import { ByteSize } from './byte-size.ts'
import { Duration } from './duration.ts'

// The policy keys of an upstream: balancing, health, retries, circuit breaking, discovery.
const closed = { additionalProperties: false } as const

const BALANCERS = ['round-robin', 'least-connections', 'consistent-hash', 'p2c-ewma'] as const

export const Balance = Type.Union(BALANCERS.map(b => Type.Literal(b)), {
  errorMessage: `must be one of ${BALANCERS.join(', ')}`,
  description: 'How a target is chosen. round-robin (default): smooth weighted, as nginx does. least-connections: fewest requests in flight per weight. ' +
    'consistent-hash: the same key (see hashOn) goes to the same target while it is up. p2c-ewma: two random targets, the one with the lower latency x load wins.'
})

export const HashOn = Type.Union([
  Type.Object({ header: Type.String({ minLength: 1, description: 'Request header whose value is the key.' }) }, closed),
  Type.Object({ cookie: Type.String({ minLength: 1, description: 'Cookie whose value is the key.' }) }, closed),
  Type.Object({ clientIp: Type.Literal(true, { description: 'The client address (after trustProxy) is the key.' }) }, closed),
  Type.Object({ path: Type.Literal(true, { description: 'The request path is the key.' }) }, closed)
], {
  errorMessage: 'must be one of { header: NAME }, { cookie: NAME }, { clientIp: true }, { path: true }',
  description: 'The key consistent-hash balancing uses. Requests without the key, or with an empty one, are spread round-robin.'
})

/** An expected status: 200, or a range such as "200-399" or "2xx". */
const StatusSpec = Type.Union([
  Type.Integer({ minimum: 100, maximum: 599 }),
  Type.String({ pattern: '^([1-5]xx|[1-5]\\d\\d-[1-5]\\d\\d)$' })
], { errorMessage: 'must be a status (200), a range ("200-399") or a class ("2xx")' })

export const HealthCheck = Type.Object({
  path: Type.String({ pattern: '^/', errorMessage: 'must start with /', description: 'Path requested (GET) on every target.' }),
  interval: Type.Optional(Type.Union([Duration], { description: 'Time between two checks of a target, more than 0. Default 5s.' })),
  timeout: Type.Optional(Type.Union([Duration], { description: 'A check that takes longer fails. Must be shorter than interval. Default 1s (a check still running when the next is due takes its turn).' })),
  expectStatus: Type.Optional(Type.Array(StatusSpec, { minItems: 1, description: 'Statuses that count as healthy. Default ["2xx", "3xx"].' })),
  unhealthyAfter: Type.Optional(Type.Integer({ minimum: 1, description: 'Consecutive failed checks that mark a target unhealthy. Default 3.' })),
  healthyAfter: Type.Optional(Type.Integer({ minimum: 1, description: 'Consecutive passed checks that mark an unhealthy target healthy again. Default 2.' }))
}, { ...closed, description: 'Active health checks. An unhealthy target gets no traffic until it passes again. Off when absent.' })

export const Passive = Type.Union([
  Type.Literal(false),
  Type.Object({
    consecutiveFailures: Type.Optional(Type.Integer({ minimum: 1, description: 'Consecutive failures (connection errors, resets, timeouts, a status in statuses) that eject a target. Default 5.' })),
    baseEjection: Type.Optional(Type.Union([Duration], { description: 'How long the first ejection lasts; each repeat doubles it. At most maxEjection. Default 30s.' })),
    maxEjection: Type.Optional(Type.Union([Duration], { description: 'Longest ejection. At least baseEjection. Default 5m.' })),
    statuses: Type.Optional(Type.Array(Type.Integer({ minimum: 500, maximum: 599, errorMessage: 'must be a status 500-599' }), {
      description: 'Response statuses that count as failures, for passive ejection and the circuit breaker. Default [502, 503, 504]: a 500 is most often a bug the request triggers, not a failing target; [] counts only connection errors, resets and timeouts.'
    })),
    maxEjectionPercent: Type.Optional(Type.Integer({
      minimum: 1,
      maximum: 100,
      description: 'Most targets out at once (ejected, or kept out by an open circuit breaker), as a percentage of the upstream\'s (rounded down, at least one), unless a target\'s last consecutiveFailures failures (a breaker: all its failures in its window) could not connect (refused, a connect timeout: it is down); the last available target is never ejected (its breaker may open). Default 50.'
    }))
  }, closed)
], {
  errorMessage: 'must be false or { consecutiveFailures, baseEjection, maxEjection, statuses, maxEjectionPercent }',
  description: 'Passive health (outlier detection): a target failing live requests is ejected for a while. On by default; false turns it off.'
})

export const RETRY_CONDITIONS = ['connect-error', 'reset', 'timeout'] as const

export const Retries = Type.Union([
  Type.Literal(false),
  Type.Object({
    attempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'Retries after the first try, each to a target not tried yet. Default 1; 0 turns retries off.' })),
    on: Type.Optional(Type.Array(Type.Union([...RETRY_CONDITIONS.map(c => Type.Literal(c)), Type.Integer({ minimum: 400, maximum: 599 })], {
      errorMessage: `must be ${RETRY_CONDITIONS.join(', ')} or a status 400-599`
    }), {
      minItems: 1,
      description: 'When to retry: connect-error (the request never left the gateway), reset (the connection broke before the response), ' +
        'timeout (no response headers in time), or a response status such as 502, 503, 504. Default [connect-error, reset].'
    })),
    methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z]+$' }), {
      minItems: 1,
      description: 'Methods retried after the request was sent (reset, timeout, status). Default the idempotent ones: GET HEAD OPTIONS TRACE PUT DELETE. ' +
        'A connect-error is retried for any method: nothing reached the target.'
    })),
    budget: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Retries allowed as a share of requests to this upstream, plus a reserve of 10 that refills at 10 per second, so retries cannot amplify an outage. Default 0.2.' })),
    maxBodyBytes: Type.Optional(ByteSize({ description: 'Request bodies up to this size (by content-length) are buffered so they can be sent again; larger or chunked bodies are only retried on connect-error. Default 64KiB.' }))
  }, closed)
], {
  errorMessage: 'must be false or { attempts, on, methods, budget, maxBodyBytes }',
  description: 'Retries to another target. Default: a request that cannot connect is retried once, and so is an idempotent one whose connection breaks before the response. false turns retries off.'
})

export const CircuitBreaker = Type.Object({
  failureRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Share of failed requests to a target over the window (failures as passive ejection counts them: a status in passive.statuses, not a 500) that opens its breaker, within passive.maxEjectionPercent. Default 0.5.' })),
  window: Type.Optional(Type.Union([Duration], { description: 'Sliding window the failure rate is measured over. Default 10s.' })),
  minRequests: Type.Optional(Type.Integer({ minimum: 1, description: 'Requests in the window before the rate counts. Default 20.' })),
  halfOpenAfter: Type.Optional(Type.Union([Duration], { description: 'How long an open breaker rejects traffic before one probe request is let through. Default 10s.' }))
}, { ...closed, description: 'Circuit breaker per target: open (no traffic) when too many requests fail, half-open probing, closed again on a success. Off when absent.' })

export const WhenAllUnhealthy = Type.Union([Type.Literal('least-bad'), Type.Literal('fail')], {
  errorMessage: 'must be least-bad or fail',
  description: 'When no target is available: least-bad (default) still sends to the one most likely to answer; fail answers 503 no_healthy_target.'
})

export const TargetResolve = Type.Literal('dns', {
  errorMessage: 'must be dns',
  description: 'Resolve the URL\'s host name (A/AAAA; or SRV when it starts with _, e.g. _http._tcp.orders.internal) on an interval: ' +
    'one target per address, added and removed without a reload. SRV records of the lowest priority are used; their weights are not (each target gets this entry\'s weight). ' +
    'A failed or empty answer keeps the last targets.'
})
