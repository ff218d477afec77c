import t from 'tap'
import { Consumers } from '../../src/consumers/consumers.ts'
import type { GatewayRequest } from '../../src/index.ts'
import { compilePlans, limitNameProblems } from './plans.ts'
import type { RateLimitConfig } from './schema.ts'

// The plans alone: what each limit compiles to, for the route and for consumers with overrides.

const limits: RateLimitConfig['limits'] = [
  { name: 'burst', requests: 10, window: '1s' },
  { name: 'hourly', requests: 1000, window: '1h', algorithm: 'token-bucket', burst: 50 },
  { name: 'daily', requests: 5000, window: 86_400_000, algorithm: 'fixed-window', burst: 7 }
]

t.test('the route plan: ids, script arguments and RateLimit-Policy', async t => {
  const { base, byConsumer } = compilePlans({ limits }, [])
  t.same(base.limits, [
    { name: 'burst', index: 0, id: 'burst:s1000', requests: 10, windowMs: 1000, policy: '"burst";q=10;w=1', remainingItem: '"burst";r=', message: 'rate limit "burst" exceeded (10 per 1s)' },
    // A bucket announces its burst, per the time it takes to fill: 50 per 180 s, the rate of 1000 per hour.
    { name: 'hourly', index: 1, id: 'hourly:t3600000', requests: 50, windowMs: 180_000, policy: '"hourly";q=50;w=180', remainingItem: '"hourly";r=', message: 'rate limit "hourly" exceeded (1000 per 1h, burst 50)' },
    { name: 'daily', index: 2, id: 'daily:f86400000', requests: 5000, windowMs: 86_400_000, policy: '"daily";q=5000;w=86400', remainingItem: '"daily";r=', message: 'rate limit "daily" exceeded (5000 per 86400s)' }
  ])
  // A burst counts for token-bucket only.
  t.same(base.args, ['s', '10', '1000', '10', 't', '1000', '3600000', '50', 'f', '5000', '86400000', '5000'])
  t.equal(base.policyHeader, '"burst";q=10;w=1, "hourly";q=50;w=180, "daily";q=5000;w=86400')
  t.equal(byConsumer.size, 0)
})

t.test('the plugin algorithm is every limit\'s default; a token bucket\'s burst defaults to its requests', async t => {
  const { base } = compilePlans({ algorithm: 'token-bucket', limits: [{ name: 'a', requests: 3, window: '1m' }, { name: 'b', requests: 4, window: '1s', algorithm: 'sliding-window' }] }, [])
  t.same(base.args, ['t', '3', '60000', '3', 's', '4', '1000', '4'])
})

t.test('a token bucket announces its burst as its quota, over the time it takes to fill: what remains is never above it', async t => {
  const policy = (requests: number, window: string, burst?: number) =>
    compilePlans({ algorithm: 'token-bucket', limits: [{ name: 'b', requests, window, burst }] }, []).base.limits[0]
  t.match(policy(5, '10s', 10), { requests: 10, windowMs: 20_000, policy: '"b";q=10;w=20' }, 'a burst above the requests')
  t.match(policy(10, '1s', 4), { requests: 4, windowMs: 1000, policy: '"b";q=4;w=1' }, 'a burst below the requests: full in 0.4 s, whole seconds up')
  // Full in 0.1 s, announced as 1 per 1 s: the message says what is enforced.
  t.match(policy(10, '1s', 1), { requests: 1, windowMs: 1000, policy: '"b";q=1;w=1', message: 'rate limit "b" exceeded (10 per 1s, burst 1)' }, 'a bucket full in under a second')
  t.match(policy(3, '10s', 10), { requests: 10, windowMs: 34_000, policy: '"b";q=10;w=34' }, 'full in 33.3 s: 34')
  t.match(policy(5, '10s'), { requests: 5, windowMs: 10_000, policy: '"b";q=5;w=10', message: 'rate limit "b" exceeded (5 per 10s)' }, 'the default burst: requests per window')
})

t.test('consumers: overrides of requests, window, algorithm and burst; false drops a limit; others keep the route plan', async t => {
  const consumers = new Consumers([
    { id: 'big', metadata: { 'rate-limit': { burst: { requests: 20, window: '2s', algorithm: 'token-bucket', burst: 30 }, daily: false } } },
    { id: 'tb', metadata: { 'rate-limit': { burst: { algorithm: 'token-bucket' }, hourly: { burst: 60 } } } },
    { id: 'other-limit', metadata: { 'rate-limit': { unknown: { requests: 1 } } } },
    { id: 'plain', metadata: { team: 'x' } }
  ])
  const { base, byConsumer } = compilePlans({ limits }, consumers.all)
  t.same([...byConsumer.keys()], ['big', 'tb'], 'only consumers that override one of the route\'s limits')
  const big = byConsumer.get('big')
  t.same(big?.limits.map(l => [l.index, l.id, l.policy]), [[0, 'burst:t2000', '"burst";q=30;w=3'], [1, 'hourly:t3600000', '"hourly";q=50;w=180']])
  t.same(big?.args, ['t', '20', '2000', '30', 't', '1000', '3600000', '50'])
  t.same(byConsumer.get('tb')?.args, ['t', '10', '1000', '10', 't', '1000', '3600000', '60', 'f', '5000', '86400000', '5000'])
  t.not(byConsumer.get('tb'), base)
})

t.test('key parts: the plugin\'s by (default consumer), a limit\'s own by', async t => {
  const req = { clientIp: '10.0.0.1', consumer: { id: 'c1', groups: [], metadata: {} }, route: { name: 'r1', upstream: 'u' }, headers: {}, clientHeaders: {}, locals: {} } as unknown as GatewayRequest
  const byDefault = compilePlans({ limits: [{ name: 'a', requests: 1, window: '1s' }, { name: 'b', requests: 1, window: '1s', by: ['consumer', 'ip'] }] }, []).base
  t.same(byDefault.keysOf(req), ['rl:{consumer=c1}:a:s1000', 'rl:{consumer=c1}:b:s1000:ip=10.0.0.1'])
  const byRoute = compilePlans({ by: ['route'], limits: [{ name: 'a', requests: 1, window: '1s' }] }, []).base
  t.same(byRoute.keysOf(req), ['rl:{route=r1}:a:s1000'])
})

t.test('the check: each name written again is a problem at its name, naming the first', async t => {
  t.same(limitNameProblems(limits), [])
  t.same(limitNameProblems([...limits, { name: 'hourly', requests: 1, window: '1s' }, { name: 'burst', requests: 1, window: '1m' }, { name: 'burst', requests: 2, window: '1m' }]), [
    { path: ['limits', 3, 'name'], message: 'limits[1] is named "hourly" too: give each limit its own name' },
    { path: ['limits', 4, 'name'], message: 'limits[0] is named "burst" too: give each limit its own name' },
    { path: ['limits', 5, 'name'], message: 'limits[0] is named "burst" too: give each limit its own name' }
  ])
})
