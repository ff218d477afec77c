import t from 'tap'
import { Agent, request } from 'undici'
import { gateway, limitedRoute, rateLimitHeaders, send, setup, sleep } from '../../test/helpers/rate-limit.ts'
import { rateLimitCases } from '../../test/helpers/rate-limit-cases.ts'
import { issues } from '../../test/helpers/config-issues.ts'

// The memory store: the same script logic as on Redis, run in process.
rateLimitCases(t, () => ({ stores: '', name: 'memory' }))

// What follows depends on the plugin, not on the store: memory only.

const statuses = async (url: string, headers: Array<Record<string, string>>) => {
  const out: number[] = []
  for (const h of headers) out.push((await send(url, h)).status)
  return out
}

t.test('a 429 reports the limit that waits longest: its name, Retry-After and message; an allowed limit\'s reset is not a wait', async t => {
  const s = await setup(t)
  // Token buckets: their times do not depend on where the clock is in a window.
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', `{ by: [ "header:x-k" ], headers: both, algorithm: token-bucket, limits: [ { name: short, requests: 1, window: 10s }, { name: long, requests: 1, window: 1h }, { name: roomy, requests: 100, window: 7d } ] }`)}`)
  t.teardown(() => gw.close())
  const first = await send(`${gw.url}/`, { 'x-k': 'a' })
  t.equal(first.status, 200)
  // short and long both have 0 left of 1: the one the next request waits for is reported, whatever the order.
  t.equal(first.headers.ratelimit, '"long";r=0;t=3600')
  t.equal(first.headers['x-ratelimit-reset'], '3600')
  const no = await send(`${gw.url}/`, { 'x-k': 'a' })
  t.equal(no.status, 429)
  t.equal(no.headers['retry-after'], '3600', 'long\'s wait, not short\'s (10 s) nor roomy\'s reset (12096 s): what r=0 said')
  t.equal(no.headers.ratelimit, '"long";r=0;t=3600')
  t.equal(no.headers['ratelimit-policy'], '"short";q=1;w=10, "long";q=1;w=3600, "roomy";q=100;w=604800')
  t.match(no.body, { error: 'rate_limited', message: 'rate limit "long" exceeded (1 per 1h)', limit: 'long', retryAfter: 3600 })
})

t.test('two fixed windows left at 0 (1 a minute, 1 an hour): t is the hour\'s wait, the next 429\'s Retry-After', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', '{ headers: both, algorithm: fixed-window, limits: [ { name: minute, requests: 1, window: 1m }, { name: hour, requests: 1, window: 1h } ] }')}`)
  t.teardown(() => gw.close())
  const first = await send(`${gw.url}/`)
  t.equal(first.status, 200)
  const no = await send(`${gw.url}/`)
  t.equal(no.status, 429)
  const retry = Number(no.headers['retry-after'])
  const [reported] = rateLimitHeaders(first).limit
  // In an hour's last minute both end together, and either may be named.
  t.ok(reported?.name === 'hour' || retry <= 60, `${String(reported?.name)} reported`)
  // The same wait, counted from two instants ms apart (a loaded machine: seconds) and rounded up each.
  const late = (reported?.t as number) - retry
  t.ok(late >= 0 && late <= 2, `t=${String(reported?.t)}, then Retry-After ${retry}`)
  t.equal(first.headers['x-ratelimit-reset'], String(reported?.t))
  if (retry > 60) t.match(no.body, { limit: 'hour', message: 'rate limit "hour" exceeded (1 per 1h)' })
  else t.match(no.body, { limit: /^(minute|hour)$/ })
})

t.test('sliding window: a client that waits the t an allowed request announced gets the whole quota', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', '{ limits: [ { name: s, requests: 3, window: 1s } ] }')}`)
  t.teardown(() => gw.close())
  const [first] = rateLimitHeaders(await send(`${gw.url}/`)).limit
  // Counted in this window, the request weighs until the end of the next: more than 1 s, at most 2.
  t.match(first, { name: 's', r: 2, t: 2 })
  // The wait under test is the one the header gave: later only leaves more.
  await sleep((first?.t as number) * 1000)
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await send(`${gw.url}/`)).status)
  t.same(statuses, [200, 200, 200], 'q=3 requests pass, as the draft says they may after t')
})

t.test('the reset is rounded up to whole seconds; legacy headers name the reported limit', async t => {
  const s = await setup(t)
  // 3 per 10 s: one token every 3333.3 ms, so the bucket is full again 3334 ms after the first request.
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', `{ headers: both, algorithm: token-bucket, limits: [ { name: b, requests: 3, window: 10s } ] }`)}`)
  t.teardown(() => gw.close())
  const a = await send(`${gw.url}/`)
  t.equal(a.headers.ratelimit, '"b";r=2;t=4')
  t.equal(a.headers['x-ratelimit-limit'], '3')
  t.equal(a.headers['x-ratelimit-remaining'], '2')
  t.equal(a.headers['x-ratelimit-reset'], '4')
})

t.test('the limit reported is the one with the least left for its quota, a bucket\'s quota being its burst', async t => {
  const s = await setup(t)
  // a: 1 an hour, bucket of 3: 2 left is 2/3 of its quota (3 per 3 h). b: 10 an hour: 9 left is 0.9 of it.
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', `{ algorithm: token-bucket, limits: [ { name: a, requests: 1, window: 1h, burst: 3 }, { name: b, requests: 10, window: 1h } ] }`)}`)
  t.teardown(() => gw.close())
  t.equal((await send(`${gw.url}/`)).headers.ratelimit, '"a";r=2;t=3600')
})

t.test('a bucket with a burst above its requests never announces more remaining than its limit', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', `{ headers: both, algorithm: token-bucket, limits: [ { name: b, requests: 5, window: 10s, burst: 10 } ] }`)}`)
  t.teardown(() => gw.close())
  const res = await send(`${gw.url}/`)
  t.equal(res.headers['ratelimit-policy'], '"b";q=10;w=20', 'the burst, per the time the bucket takes to fill (the rate of 5 per 10 s)')
  t.equal(res.headers.ratelimit, '"b";r=9;t=2')
  t.equal(res.headers['x-ratelimit-limit'], '10')
  t.equal(res.headers['x-ratelimit-remaining'], '9')
})

t.test('a bucket\'s 429 message gives its configured rate and burst, not the quota its headers announce', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', `{ algorithm: token-bucket, limits: [ { name: b, requests: 10, window: 1h, burst: 1 } ] }`)}`)
  t.teardown(() => gw.close())
  t.equal((await send(`${gw.url}/`)).status, 200)
  const no = await send(`${gw.url}/`)
  t.equal(no.status, 429)
  t.equal(no.headers['ratelimit-policy'], '"b";q=1;w=360')
  t.match(no.body, { message: 'rate limit "b" exceeded (10 per 1h, burst 1)' }, 'the window as written')
})

t.test('headers: none: a 429 says Retry-After and nothing else about the quota', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', `{ headers: none, algorithm: token-bucket, limits: [ { name: n, requests: 1, window: 1m } ] }`)}`)
  t.teardown(() => gw.close())
  t.equal((await send(`${gw.url}/`)).status, 200)
  const no = await send(`${gw.url}/`)
  t.equal(no.status, 429)
  t.equal(no.headers['retry-after'], '60')
  for (const h of ['ratelimit', 'ratelimit-policy', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) t.equal(no.headers[h], undefined, h)
})

t.test('keys: values cannot pose as other values (separators, braces, percent signs, long values), each key part counts', async t => {
  const s = await setup(t)
  const one = (name: string, by: string) => limitedRoute(name, `/${name}`, `{ by: ${by}, limits: [ { name: ${name}, requests: 1, window: 1h } ] }`)
  const gw = await gateway(s, `plugins:
  test-auth: {}
routes:
${one('two', '[ "header:x-a", "header:x-b" ]')}${one('upper', '[ "header:X-Api-Key" ]')}${one('claim', '[ "claim:org" ]')}${one('long', '[ "header:x-k" ]')}${one('ip', '[ ip ]')}${limitedRoute('r1', '/r1', '{ by: [ route ], limits: [ { name: per-route, requests: 1, window: 1h } ] }')}${limitedRoute('r2', '/r2', '{ by: [ route ], limits: [ { name: per-route, requests: 1, window: 1h } ] }')}`)
  t.teardown(() => gw.close())
  const u = `${gw.url}/two`
  // Unescaped, both would be the key "header:x-a=p|header:x-b=q|header:x-b=r".
  t.same(await statuses(u, [{ 'x-a': 'p|header:x-b=q', 'x-b': 'r' }, { 'x-a': 'p', 'x-b': 'q|header:x-b=r' }]), [200, 200], 'a | in a value is not a separator')
  t.same(await statuses(u, [{ 'x-a': 'pheader:x-b=q', 'x-b': 'r' }, { 'x-a': 'p', 'x-b': 'qheader:x-b=r' }]), [200, 200], 'the parts are separated')
  // The hash tag turns braces into _: unescaped, a{b and a_b would share a counter.
  t.same(await statuses(u, [{ 'x-a': 'a{b', 'x-b': '1' }, { 'x-a': 'a_b', 'x-b': '1' }, { 'x-a': 'a}b', 'x-b': '1' }]), [200, 200, 200], 'braces are not _')
  t.same(await statuses(u, [{ 'x-a': '{', 'x-b': '1' }, { 'x-a': '_', 'x-b': '1' }]), [200, 200], 'nor is a brace alone')
  // %7c is how | is escaped: a value that already says %7c is another value.
  t.same(await statuses(u, [{ 'x-a': 'c|d', 'x-b': '1' }, { 'x-a': 'c%7cd', 'x-b': '1' }, { 'x-a': 'c%7Cd', 'x-b': '1' }, { 'x-a': 'cd', 'x-b': '1' }]), [200, 200, 200, 200], '% is escaped too, and | is not dropped')
  t.same(await statuses(u, [{ 'x-a': 'c|d', 'x-b': '1' }, { 'x-a': 'c%7cd', 'x-b': '1' }]), [429, 429], 'and each value keeps its counter')

  t.same(await statuses(`${gw.url}/upper`, [{ 'x-api-key': 'k' }, { 'x-api-key': 'k' }, { 'x-api-key': 'l' }]), [200, 429, 200], 'a header named in capitals is read')

  // Numbers and booleans are values like strings; objects are not, and the client IP stands in.
  const c = `${gw.url}/claim`
  t.same(await statuses(c, [{ 'x-claims': '{"org":7}' }, { 'x-claims': '{"org":"7"}' }, { 'x-claims': '{"org":8}' }]), [200, 429, 200], 'a number claim')
  t.same(await statuses(c, [{ 'x-claims': '{"org":true}' }, { 'x-claims': '{"org":"true"}' }, { 'x-claims': '{"org":false}' }]), [200, 429, 200], 'a boolean claim')
  t.same(await statuses(c, [{ 'x-claims': '{"org":{"id":1}}' }, { 'x-claims': '{"org":[2]}' }, {}]), [200, 429, 429], 'an object claim: the client IP')

  // Values over 64 characters are hashed: two that differ only at the end keep two counters.
  const base = 'x'.repeat(100)
  t.same(await statuses(`${gw.url}/long`, [{ 'x-k': base + 'a' }, { 'x-k': base + 'b' }, { 'x-k': base + 'a' }]), [200, 200, 429])

  t.same(await statuses(`${gw.url}/ip`, [{ 'x-claims': '{"ip":"10.0.0.1"}' }, { 'x-claims': '{"ip":"10.0.0.2"}' }]), [200, 429], 'by ip: the client address, not a claim named ip')
  t.same(await statuses(`${gw.url}/r1`, [{}, {}]), [200, 429])
  t.equal((await send(`${gw.url}/r2`)).status, 200, 'by route: the other route has its own counter of the same limit')
})

t.test('a limit\'s own by: only that limit is counted per its parts', async t => {
  const s = await setup(t)
  // per-key: 1 per key; total: 3 for everyone on the route (by route). Token buckets: times that do not depend on the clock.
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', '{ by: [ "header:x-k" ], algorithm: token-bucket, limits: [ { name: per-key, requests: 1, window: 1h }, { name: total, requests: 3, window: 1h, by: [ route ] } ] }')}`)
  t.teardown(() => gw.close())
  t.same(await statuses(`${gw.url}/`, [{ 'x-k': 'a' }, { 'x-k': 'a' }, { 'x-k': 'b' }, { 'x-k': 'c' }, { 'x-k': 'd' }]), [200, 429, 200, 200, 429])
  const last = await send(`${gw.url}/`, { 'x-k': 'e' })
  t.equal(last.status, 429)
  // The bucket of 3 is empty; one token comes back every 1200 s.
  t.equal(last.headers.ratelimit, '"total";r=0;t=1200', 'total rejected it (3 allowed), per-key of e did not')
})

t.test('consumer overrides: window, algorithm and burst', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `consumers:
  - id: gold
    metadata:
      rate-limit: { hourly: { requests: 1, window: 1m, algorithm: token-bucket, burst: 3 }, unknown-here: false }
  - id: silver
    metadata:
      rate-limit: { other: false }
plugins:
  test-auth: {}
routes:
${limitedRoute('r', '/*', '{ limits: [ { name: hourly, requests: 2, window: 1h } ] }')}`)
  t.teardown(() => gw.close())
  const gold = await send(`${gw.url}/`, { 'x-consumer': 'gold' })
  t.equal(gold.headers['ratelimit-policy'], '"hourly";q=3;w=180', 'a bucket of 3, full in 180 s')
  // A bucket of 3, one token per 60 s: 2 left, full again in 60 s.
  t.equal(gold.headers.ratelimit, '"hourly";r=2;t=60')
  t.same(await statuses(`${gw.url}/`, [{ 'x-consumer': 'gold' }, { 'x-consumer': 'gold' }, { 'x-consumer': 'gold' }]), [200, 200, 429])
  const silver = await send(`${gw.url}/`, { 'x-consumer': 'silver' })
  t.equal(silver.headers['ratelimit-policy'], '"hourly";q=2;w=3600', 'overrides of limits the route does not have: the route\'s plan')
})

t.test('the anonymous consumer is counted per client IP (its overrides still apply); a consumer with a key, per consumer across IPs', async t => {
  const s = await setup(t)
  const KEY = 'ci-bot-key-0123456789'
  const gw = await gateway(s, `consumers:
  - id: guest
    metadata:
      rate-limit: { m: { requests: 2 } }
  - id: ci-bot
    credentials:
      key-auth: { keys: [ "${KEY}" ] }
plugins:
  rate-limit: { limits: [ { name: m, requests: 3, window: 1m } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      key-auth: { anonymous: guest }
`)
  t.teardown(() => gw.close())
  // The gateway listens on 127.0.0.1; any 127/8 address reaches it, as another client. (The
  // Agent's own localAddress: undici sets its Client's, null by default, over connect's.)
  const from = (localAddress: string) => {
    const agent = new Agent({ localAddress })
    t.teardown(() => agent.close())
    return async (headers: Record<string, string>, n: number) => {
      const out: number[] = []
      for (let i = 0; i < n; i++) {
        const res = await request(`${gw.url}/`, { headers, dispatcher: agent })
        await res.body.dump()
        out.push(res.statusCode)
      }
      return out
    }
  }
  const [one, two] = [from('127.0.0.1'), from('127.0.0.2')]
  t.same(await one({}, 3), [200, 200, 429], 'guest\'s override (2) from 127.0.0.1')
  t.same(await two({}, 3), [200, 200, 429], 'another client IP: its own counter, not the exhausted one')
  const key = { 'x-api-key': KEY }
  t.same([...await one(key, 2), ...await two(key, 2)], [200, 200, 200, 429], 'ci-bot: one counter of 3 whatever its address')
})

t.test('two limits of one name are a config error at the second name, on a route or at the top level (validate once passed them, start refused)', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
plugins:
  rate-limit: { limits: [ { name: x, requests: 10, window: 1s }, { name: y, requests: 1, window: 1h }, { name: x, requests: 100, window: 1m } ] }
routes:
${limitedRoute('r', '/*', '{ limits: [ { name: a, requests: 1, window: 1h }, { name: a, requests: 2, window: 1m } ] }')}`), [
    'gw.yaml:6:112 plugins.rate-limit.limits[2].name: limits[0] is named "x" too: give each limit its own name',
    'gw.yaml:12:77 routes[0].plugins.rate-limit.limits[1].name: limits[0] is named "a" too: give each limit its own name'
  ])
  const s = await setup(t)
  await t.rejects(gateway(s, `routes:
${limitedRoute('r', '/*', '{ limits: [ { name: a, requests: 1, window: 1h }, { name: a, requests: 2, window: 1m } ] }')}`),
  /gateway\.yaml:\d+:\d+ routes\[0\]\.plugins\.rate-limit\.limits\[1\]\.name: limits\[0\] is named "a" too/)
})

t.test('limits the store cannot run are config errors at their key: 15-digit quotas, windows up to 365d, one request per µs, buckets full within a year', async t => {
  const limit = (l: string, i: number) => `          - { name: l${i}, ${l} }\n`
  const config = (...ls: string[]) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
consumers:
  - id: fast
    metadata:
      rate-limit: { l0: { requests: 1000000000000000 } }
  - id: long
    metadata:
      rate-limit: { l0: { window: 366d } }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      rate-limit:
        algorithm: token-bucket
        limits:
${ls.map(limit).join('')}`
  const WINDOW = 'must be a whole number of seconds, minutes, hours or days up to 365d, e.g. 1s, 10m, 1d (or milliseconds, a multiple of 1000)'
  t.same(await issues(t, config('requests: 1e21, window: 1s', 'requests: 1000000000000000, window: 1s', 'requests: 1, window: 1000000000000000d',
    'requests: 1, window: 366d', 'requests: 1, window: 31622400000', 'requests: 8000000, window: 1s', 'requests: 1, window: 1d, burst: 366')), [
    'gw.yaml:8:37 consumers[0].metadata.rate-limit.l0.requests: must be <= 999999999999999',
    'gw.yaml:11:35 consumers[1].metadata.rate-limit.l0.window: ' + WINDOW,
    'gw.yaml:20:35 routes[0].plugins.rate-limit.limits[0].requests: must be <= 999999999999999',
    'gw.yaml:21:35 routes[0].plugins.rate-limit.limits[1].requests: must be <= 999999999999999',
    'gw.yaml:22:46 routes[0].plugins.rate-limit.limits[2].window: ' + WINDOW,
    'gw.yaml:23:46 routes[0].plugins.rate-limit.limits[3].window: ' + WINDOW,
    'gw.yaml:24:46 routes[0].plugins.rate-limit.limits[4].window: ' + WINDOW
  ])
  // The schema passed: the plugin's check finds the rest, at the key at fault.
  t.same(await issues(t, config('requests: 8000000, window: 1s', 'requests: 1000000, window: 1s', 'requests: 1, window: 1d, burst: 366', 'requests: 1, window: 1d, burst: 365')
    .replace(/consumers:[\s\S]*?routes:/, 'routes:')), [
    'gw.yaml:13:35 routes[0].plugins.rate-limit.limits[0].requests: 8000000 per 1s is more than one request per microsecond: at most 1000000',
    'gw.yaml:15:57 routes[0].plugins.rate-limit.limits[2].burst: a bucket of 366 at 1 per 1d takes more than 365 days to fill: at most 365'
  ])
})

t.test('a consumer\'s override that makes a limit the store cannot run fails the start, naming the consumer', async t => {
  const s = await setup(t)
  await t.rejects(gateway(s, `consumers:
  - id: fast
    metadata:
      rate-limit: { l: { requests: 2000000 } }
routes:
${limitedRoute('r', '/*', '{ limits: [ { name: l, requests: 10, window: 1s } ] }')}`),
  /consumer "fast", metadata\.rate-limit\.l: 2000000 per 1s is more than one request per microsecond: at most 1000000/)
})
