import t, { type Test } from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'
import { breakerSettings, healthCheckSettings, passiveSettings } from '../../src/upstreams/settings.ts'
import { ejectionLimits } from '../../src/upstreams/outlier-detection.ts'

const HEAD = `server: { listen: { host: 127.0.0.1, port: 0 } }
routes: []
upstreams:
`

async function issues (t: Test, upstreams: string): Promise<string[]> {
  try {
    await parseConfig(HEAD + upstreams, 'gw.yaml', {})
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue)
    throw err
  }
  t.fail('the config was accepted')
  return []
}

t.test('every upstream key is accepted in its documented shape', async t => {
  const loaded = await parseConfig(HEAD + `  orders:
    balance: consistent-hash
    hashOn: { cookie: session }
    targets:
      - { url: "http://127.0.0.1:3000", weight: 2 }
      - { url: "http://orders.internal:3000", resolve: dns, dnsInterval: 10s }
    connections: 64
    pipelining: 1
    healthCheck: { path: /health, interval: 5s, timeout: 1s, expectStatus: [200, "3xx", "400-404"], unhealthyAfter: 3, healthyAfter: 2 }
    passive: { consecutiveFailures: 5, baseEjection: 30s, maxEjection: 5m, statuses: [500, 503], maxEjectionPercent: 34 }
    whenAllUnhealthy: fail
    retries: { attempts: 2, on: [connect-error, reset, timeout, 502, 503], methods: [GET, PUT], budget: 0.1, maxBodyBytes: 1024 }
    circuitBreaker: { failureRate: 0.5, window: 10s, minRequests: 20, halfOpenAfter: 10s }
  plain:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    passive: false
    retries: false
`, 'gw.yaml', {})
  const orders = loaded.config.upstreams.orders!
  t.same(loaded.config.upstreams, {
    orders: {
      balance: 'consistent-hash',
      hashOn: { cookie: 'session' },
      targets: [{ url: 'http://127.0.0.1:3000', weight: 2 }, { url: 'http://orders.internal:3000', resolve: 'dns', dnsInterval: '10s' }],
      connections: 64,
      pipelining: 1,
      healthCheck: { path: '/health', interval: '5s', timeout: '1s', expectStatus: [200, '3xx', '400-404'], unhealthyAfter: 3, healthyAfter: 2 },
      passive: { consecutiveFailures: 5, baseEjection: '30s', maxEjection: '5m', statuses: [500, 503], maxEjectionPercent: 34 },
      whenAllUnhealthy: 'fail',
      retries: { attempts: 2, on: ['connect-error', 'reset', 'timeout', 502, 503], methods: ['GET', 'PUT'], budget: 0.1, maxBodyBytes: 1024 },
      circuitBreaker: { failureRate: 0.5, window: '10s', minRequests: 20, halfOpenAfter: '10s' }
    },
    plain: { targets: [{ url: 'http://127.0.0.1:3001' }], passive: false, retries: false }
  }, 'every key kept as written')
  // And what the upstream is built with, durations in ms.
  const { expect, ...health } = healthCheckSettings(orders)!
  t.same(health, { path: '/health', intervalMs: 5_000, timeoutMs: 1_000, unhealthyAfter: 3, healthyAfter: 2 })
  t.same([199, 200, 201, 300, 399, 400, 404, 405].filter(s => expect[s] === 1), [200, 300, 399, 400, 404], 'expectStatus: 200, 3xx, 400-404')
  t.same(passiveSettings(orders), { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000 })
  t.same(breakerSettings(orders), { failureRate: 0.5, windowMs: 10_000, minRequests: 20, halfOpenAfterMs: 10_000 })
  t.equal(passiveSettings(loaded.config.upstreams.plain!), undefined, 'passive: false')
  t.same(ejectionLimits(orders.passive), { statuses: [500, 503], maxEjectionPercent: 34 })
  t.same(ejectionLimits(undefined), { statuses: [502, 503, 504], maxEjectionPercent: 50 }, 'by default the gateway errors count, half the targets may be out')
})

t.test('schema errors: precise position and key path, a mistyped key inside false | {...} included', async t => {
  t.same(await issues(t, `  a:
    balance: random
    targets: [ { url: "http://127.0.0.1:1", weight: 0 } ]
    retries: { attemps: 2, on: [connect-error, 200] }
    passive: true
    circuitBreaker: { failureRate: 2 }
    hashOn: { header: x, cookie: y }
  b:
    targets: [ { url: "http://127.0.0.1:2" } ]
    passive: { statuses: [500, 404], maxEjectionPercent: 0 }
`), [
    'gw.yaml:5:14 upstreams.a.balance: must be one of round-robin, least-connections, consistent-hash, p2c-ewma',
    'gw.yaml:6:53 upstreams.a.targets[0].weight: must be >= 1',
    'gw.yaml:7:16 upstreams.a.retries.attemps: unknown key "attemps" (did you mean "attempts"?)',
    'gw.yaml:7:48 upstreams.a.retries.on[1]: must be connect-error, reset, timeout or a status 400-599',
    'gw.yaml:8:14 upstreams.a.passive: must be false or { consecutiveFailures, baseEjection, maxEjection, statuses, maxEjectionPercent }',
    'gw.yaml:9:36 upstreams.a.circuitBreaker.failureRate: must be <= 1',
    'gw.yaml:10:13 upstreams.a.hashOn: must be one of { header: NAME }, { cookie: NAME }, { clientIp: true }, { path: true }',
    'gw.yaml:13:32 upstreams.b.passive.statuses[1]: must be a status 500-599',
    'gw.yaml:13:58 upstreams.b.passive.maxEjectionPercent: must be >= 1'
  ])
})

t.test('semantic errors: combinations, ranges, duplicates', async t => {
  t.same(await issues(t, `  a:
    balance: consistent-hash
    targets:
      - { url: "http://127.0.0.1:1" }
      - { url: "http://127.0.0.1:1/" }
      - { url: "http://10.0.0.1:80", resolve: dns }
      - { url: "http://127.0.0.1:2", dnsInterval: 5s }
    healthCheck: { path: /h, interval: 1s, timeout: 2s, expectStatus: ["300-200"] }
    passive: { baseEjection: 10s, maxEjection: 1s }
    retries: { methods: [GTE] }
  b:
    hashOn: { path: true }
    targets: [ { url: "http://127.0.0.1:3" } ]
  c:
    targets: [ { url: "http://127.0.0.1:4" } ]
    passive: { baseEjection: 10m }
  d:
    targets: [ { url: "http://127.0.0.1:5" } ]
    passive: { maxEjection: 10s }
  e:
    targets: [ { url: "http://127.0.0.1:6" } ]
    passive: { baseEjection: 5m, maxEjection: 10m }
`), [
    'gw.yaml:5:14 upstreams.a.balance: consistent-hash needs hashOn: { header: NAME }, { cookie: NAME }, { clientIp: true } or { path: true }',
    'gw.yaml:8:16 upstreams.a.targets[1].url: http://127.0.0.1:1 is already targets[0]',
    'gw.yaml:9:47 upstreams.a.targets[2].resolve: "10.0.0.1" is an address, not a name to resolve',
    'gw.yaml:10:51 upstreams.a.targets[3].dnsInterval: dnsInterval is only used with resolve: dns',
    'gw.yaml:11:53 upstreams.a.healthCheck.timeout: must be shorter than healthCheck.interval',
    'gw.yaml:11:72 upstreams.a.healthCheck.expectStatus[0]: range "300-200" is empty',
    'gw.yaml:12:48 upstreams.a.passive.maxEjection: must not be shorter than baseEjection',
    'gw.yaml:13:26 upstreams.a.retries.methods[0]: unknown HTTP method "GTE" (did you mean "GET"?)',
    'gw.yaml:15:13 upstreams.b.hashOn: hashOn is only used with balance: consistent-hash',
    'gw.yaml:19:30 upstreams.c.passive.baseEjection: must not be longer than maxEjection (default 5m): set maxEjection too',
    'gw.yaml:22:29 upstreams.d.passive.maxEjection: must not be shorter than baseEjection (default 30s): set baseEjection too'
  ])
})

t.test('health checks: an interval of 0 is refused; a short one without timeout is not', async t => {
  t.same(await issues(t, `  a:
    targets: [ { url: "http://127.0.0.1:1" } ]
    healthCheck: { path: /h, interval: 0 }
  b:
    targets: [ { url: "http://127.0.0.1:2" } ]
    healthCheck: { path: /h, interval: 0ms, timeout: 0 }
  c:
    targets: [ { url: "http://127.0.0.1:3" } ]
    healthCheck: { path: /h, interval: 500ms }
`), [
    'gw.yaml:6:40 upstreams.a.healthCheck.interval: must be more than 0',
    'gw.yaml:9:40 upstreams.b.healthCheck.interval: must be more than 0'
  ])
})
