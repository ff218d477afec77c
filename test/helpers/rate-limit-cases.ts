import type { Test } from 'tap'
import { gateway, limitedRoute, metric, rateLimitHeaders, send, setup, sleep } from './rate-limit.ts'

/** A store for one test: its `stores:` section (empty for memory), the name plugins use, and whether it is a Redis Cluster. */
export type StoreForTest = () => { stores: string, name: string, cluster?: boolean }

/** Behaviour every store must show the same way (memory, Redis, Redis Cluster): the script logic is one. */
export function rateLimitCases (t: Test, store: StoreForTest): void {
  t.test('sliding window: quota counted down in RateLimit headers, then 429 with JSON, Retry-After and r=0', async t => {
    const s = await setup(t)
    const st = store()
    const gw = await gateway(s, `${st.stores}
routes:
${limitedRoute('r', '/*', `{ store: ${st.name}, limits: [ { name: hourly, requests: 3, window: 1h } ] }`)}`)
    t.teardown(() => gw.close())
    let lastT = 0
    for (const remaining of [2, 1, 0]) {
      const a = await send(`${gw.url}/x`)
      t.equal(a.status, 200)
      const h = rateLimitHeaders(a)
      lastT = h.limit[0]?.t as number
      t.same(h.policies, [{ name: 'hourly', q: 3, w: 3600 }])
      t.match(h.limit, [{ name: 'hourly', r: remaining, t: Number }])
      t.ok(remaining === 0 ? lastT >= 1 && lastT <= 3600 + 1200 : lastT > 3600 && lastT <= 7200,
        'resets when the next window ends (the requests no longer weigh); at r=0, when the next may pass (1200 s into the next one at most)')
      t.equal(a.headers['x-ratelimit-limit'], undefined, 'no legacy headers by default')
    }
    const no = await send(`${gw.url}/x`)
    t.equal(no.status, 429)
    t.match(no.body, { error: 'rate_limited', limit: 'hourly', requestId: String })
    const retry = Number(no.headers['retry-after'])
    t.ok(retry >= 1 && retry <= 7200, `Retry-After ${retry} is at most two windows`)
    t.same(rateLimitHeaders(no).limit, [{ name: 'hourly', r: 0, t: retry }], 'the 429 says when to come back')
    // Ms apart, the two waits round to seconds apart at most once.
    t.ok(Math.abs(lastT - retry) <= 1, `r=0 said t=${lastT}: when the next request may pass, as its Retry-After ${retry}`)
    t.equal(await metric(gw.adminUrl as string, 'portcullis_ratelimit_requests_total{route="r",result="allowed"}'), 3)
    t.equal(await metric(gw.adminUrl as string, 'portcullis_ratelimit_requests_total{route="r",result="limited"}'), 1)
  })

  t.test('token bucket: r=0 gives as t the wait of the next request, not the time to a full bucket', async t => {
    const s = await setup(t)
    const st = store()
    const gw = await gateway(s, `${st.stores}
routes:
${limitedRoute('r', '/*', `{ store: ${st.name}, algorithm: token-bucket, limits: [ { name: b, requests: 1, window: 1h, burst: 3 } ] }`)}`)
    t.teardown(() => gw.close())
    const answers = []
    for (let i = 0; i < 4; i++) answers.push(await send(`${gw.url}/x`))
    t.same(answers.map(a => a.status), [200, 200, 200, 429])
    t.same(answers.map(a => rateLimitHeaders(a).limit[0]), [{ name: 'b', r: 2, t: 3600 }, { name: 'b', r: 1, t: 7200 }, { name: 'b', r: 0, t: 3600 }, { name: 'b', r: 0, t: 3600 }],
      'full again in 1 h, then 2 h; at r=0, the next token in 1 h (not 3 h)')
    t.equal(answers[3]?.headers['retry-after'], '3600')
  })

  t.test('several limits: the first exhausted decides, and the others are not charged for what it rejects', async t => {
    const s = await setup(t)
    const st = store()
    // Route "both" holds small and big; route "big" holds big alone and shows its count (same name and key: same counter).
    const gw = await gateway(s, `${st.stores}
routes:
${limitedRoute('both', '/both', `{ store: ${st.name}, limits: [ { name: small, requests: 2, window: 1h }, { name: big, requests: 10, window: 1h, algorithm: fixed-window } ] }`)}${limitedRoute('big', '/big', `{ store: ${st.name}, limits: [ { name: big, requests: 10, window: 1h, algorithm: fixed-window } ] }`)}`)
    t.teardown(() => gw.close())
    const first = await send(`${gw.url}/both`)
    t.same(rateLimitHeaders(first).policies, [{ name: 'small', q: 2, w: 3600 }, { name: 'big', q: 10, w: 3600 }])
    t.match(rateLimitHeaders(first).limit, [{ name: 'small', r: 1 }], 'the policy closest to its limit is reported')
    t.equal((await send(`${gw.url}/both`)).status, 200)
    for (let i = 0; i < 5; i++) {
      const a = await send(`${gw.url}/both`)
      t.equal(a.status, 429)
      t.match(rateLimitHeaders(a).limit, [{ name: 'small', r: 0 }])
    }
    const big = await send(`${gw.url}/big`)
    t.equal(big.status, 200)
    t.match(rateLimitHeaders(big).limit, [{ name: 'big', r: 7 }], 'big counted the 2 allowed requests and this one, not the 5 rejected')
  })

  t.test('a limit shares its counter across routes whatever other limits they have', async t => {
    const s = await setup(t)
    const st = store()
    const daily = '{ name: daily, requests: 3, window: 1h }'
    const perIp = '{ name: per-ip, requests: 100, window: 1m, by: [ ip ] }'
    // Route a: daily per consumer. Route b: the same daily and a limit per IP (no key part in common). Route c: that per-IP limit alone.
    const gw = await gateway(s, `${st.stores}
consumers:
  - id: bob
plugins:
  test-auth: {}
routes:
${limitedRoute('a', '/a', `{ store: ${st.name}, limits: [ ${daily} ] }`)}${limitedRoute('b', '/b', `{ store: ${st.name}, limits: [ ${daily}, ${perIp} ] }`)}${limitedRoute('c', '/c', `{ store: ${st.name}, limits: [ ${perIp} ] }`)}`)
    t.teardown(() => gw.close())
    const bob = { 'x-consumer': 'bob' }
    const onA: number[] = []
    for (let i = 0; i < 4; i++) onA.push((await send(`${gw.url}/a`, bob)).status)
    t.same(onA, [200, 200, 200, 429], 'daily on a')
    const onB = await send(`${gw.url}/b`, bob)
    t.equal(onB.status, 429, 'daily on b is the same counter: already used up on a')
    t.match(onB.body, { limit: 'daily' })
    t.match(rateLimitHeaders(onB).limit, [{ name: 'daily', r: 0 }])
    const onC = await send(`${gw.url}/c`, bob)
    t.equal(onC.status, 200)
    // One store call decides both limits of b, except on Cluster where their keys are in different slots.
    const counted = st.cluster === true ? 1 : 0
    t.match(rateLimitHeaders(onC).limit, [{ name: 'per-ip', r: 99 - counted }], st.cluster === true ? 'Cluster: per-ip counted the request daily rejected (documented)' : 'per-ip did not count the request daily rejected')
  })

  t.test('fixed window rolls over; token bucket refills one token per window/requests', async t => {
    const s = await setup(t)
    const st = store()
    // Windows of 2 s: long enough for three requests on a loaded machine, short enough to wait out.
    const gw = await gateway(s, `${st.stores}
routes:
${limitedRoute('fixed', '/fixed', `{ store: ${st.name}, algorithm: fixed-window, limits: [ { name: f, requests: 2, window: 2s } ] }`)}${limitedRoute('bucket', '/bucket', `{ store: ${st.name}, algorithm: token-bucket, limits: [ { name: b, requests: 1, window: 2s, burst: 2 } ] }`)}`)
    t.teardown(() => gw.close())
    const nextWindow = () => sleep(2000 - (Date.now() % 2000) + 5)
    // Start at the beginning of a window (epoch-aligned), so that three requests fall in one.
    await nextWindow()
    const a = await send(`${gw.url}/fixed`)
    t.match(rateLimitHeaders(a).limit, [{ name: 'f', r: 1, t: 2 }])
    t.equal((await send(`${gw.url}/fixed`)).status, 200)
    const no = await send(`${gw.url}/fixed`)
    t.equal(no.status, 429)
    t.ok(['1', '2'].includes(String(no.headers['retry-after'])), 'retry at the end of the window')
    await nextWindow()
    const next = await send(`${gw.url}/fixed`)
    t.equal(next.status, 200, 'a new window')
    t.match(rateLimitHeaders(next).limit, [{ name: 'f', r: 1 }])

    // Bucket of 2, refilled at 1 per 2 s.
    const b1 = await send(`${gw.url}/bucket`)
    t.match(rateLimitHeaders(b1).limit, [{ name: 'b', r: 1, t: 2 }], 'full again 2 s after')
    t.equal((await send(`${gw.url}/bucket`)).status, 200)
    const empty = await send(`${gw.url}/bucket`)
    t.equal(empty.status, 429)
    const retry = Number(empty.headers['retry-after'])
    t.ok(retry === 1 || retry === 2, 'the next token within 2 s')
    await sleep(retry * 1000)
    const refilled = await send(`${gw.url}/bucket`)
    t.equal(refilled.status, 200, 'one token came back')
    t.match(rateLimitHeaders(refilled).limit, [{ name: 'b', r: 0 }])
    t.equal((await send(`${gw.url}/bucket`)).status, 429, 'and only one')
  })

  t.test('keys: consumer overrides, header and claim keys, the client IP for requests without the part', async t => {
    const s = await setup(t)
    const st = store()
    const gw = await gateway(s, `${st.stores}
consumers:
  - id: free
  - id: gold
    metadata:
      rate-limit: { hourly: { requests: 4 } }
  - id: internal
    metadata:
      rate-limit: { hourly: false }
plugins:
  test-auth: {}
routes:
${limitedRoute('by-consumer', '/c', `{ store: ${st.name}, limits: [ { name: hourly, requests: 2, window: 1h } ] }`)}${limitedRoute('by-header', '/h', `{ store: ${st.name}, by: [ "header:x-api-key" ], limits: [ { name: keyed, requests: 1, window: 1h } ] }`)}${limitedRoute('by-claim', '/o', `{ store: ${st.name}, by: [ "claim:org", route ], limits: [ { name: org, requests: 1, window: 1h } ] }`)}`)
    t.teardown(() => gw.close())
    const statuses = async (path: string, headers: Record<string, string>, n: number) => {
      const out: number[] = []
      for (let i = 0; i < n; i++) out.push((await send(`${gw.url}${path}`, headers)).status)
      return out
    }
    t.same(await statuses('/c', { 'x-consumer': 'free' }, 3), [200, 200, 429], 'the route\'s limit')
    const gold = await send(`${gw.url}/c`, { 'x-consumer': 'gold' })
    t.same(rateLimitHeaders(gold).policies, [{ name: 'hourly', q: 4, w: 3600 }], 'the override is the policy announced')
    t.same(await statuses('/c', { 'x-consumer': 'gold' }, 4), [200, 200, 200, 429], 'gold has 4')
    const internal = await send(`${gw.url}/c`, { 'x-consumer': 'internal' })
    t.equal(internal.headers['ratelimit-policy'], undefined, 'an exempt consumer gets no quota headers')
    t.same(await statuses('/c', { 'x-consumer': 'internal' }, 5), [200, 200, 200, 200, 200])
    t.same(await statuses('/c', {}, 3), [200, 200, 429], 'no consumer: counted per client IP')

    t.same(await statuses('/h', { 'x-api-key': 'a' }, 2), [200, 429])
    t.same(await statuses('/h', { 'x-api-key': 'b|c{d}' }, 2), [200, 429], 'another key value, another counter')
    t.same(await statuses('/h', {}, 2), [200, 429], 'no header: the client IP')

    t.same(await statuses('/o', { 'x-org': 'acme' }, 2), [200, 429])
    t.same(await statuses('/o', { 'x-org': 'globex' }, 1), [200])
  })

  t.test('headers: legacy, both, none', async t => {
    const s = await setup(t)
    const st = store()
    const route = (name: string, mode: string) => limitedRoute(name, `/${name}`, `{ store: ${st.name}, headers: ${mode}, limits: [ { name: l, requests: 5, window: 10s, algorithm: fixed-window } ] }`)
    const gw = await gateway(s, `${st.stores}
routes:\n${route('legacy', 'legacy')}${route('both', 'both')}${route('none', 'none')}`)
    t.teardown(() => gw.close())
    const legacy = await send(`${gw.url}/legacy`)
    t.equal(legacy.headers['x-ratelimit-limit'], '5')
    t.equal(legacy.headers['x-ratelimit-remaining'], '4')
    t.ok(Number(legacy.headers['x-ratelimit-reset']) >= 1 && Number(legacy.headers['x-ratelimit-reset']) <= 10)
    t.equal(legacy.headers.ratelimit, undefined)
    const both = await send(`${gw.url}/both`)
    t.equal(both.headers['x-ratelimit-remaining'], '3', 'same counter (same limit name and key)')
    t.match(rateLimitHeaders(both).limit, [{ name: 'l', r: 3 }])
    const none = await send(`${gw.url}/none`)
    t.equal(none.status, 200)
    t.equal(none.headers['x-ratelimit-limit'], undefined)
    t.equal(none.headers.ratelimit, undefined)
  })
}
