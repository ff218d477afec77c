import t from 'tap'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'
import { gateway, limitedRoute, rateLimitHeaders, send, setup } from '../../test/helpers/rate-limit.ts'

// A burst on a limit that is no token bucket was ignored without a word: the client got no burst.
const IGNORED = 'burst is token-bucket only, and this limit is'

t.test('a burst on a limit that is no token bucket is a config error at the burst; on a token bucket it is fine', async t => {
  t.same(await issues(t, ONE_ROUTE_PLUGINS + `      rate-limit:
        limits:
          - { name: a, requests: 10, window: 1s, burst: 5 }
          - { name: b, requests: 10, window: 1s, burst: 5, algorithm: fixed-window }
          - { name: c, requests: 10, window: 1s, burst: 5, algorithm: token-bucket }
          - { name: d, requests: 10, window: 1s }
  - name: s
    match: { path: /s }
    upstream: up
    plugins:
      rate-limit:
        algorithm: token-bucket
        limits:
          - { name: e, requests: 10, window: 1s, burst: 5 }
          - { name: f, requests: 10, window: 1s, burst: 5, algorithm: sliding-window }
`), [
    `gw.yaml:12:57 routes[0].plugins.rate-limit.limits[0].burst: ${IGNORED} sliding-window: it would be ignored; set algorithm: token-bucket, or remove burst`,
    `gw.yaml:13:57 routes[0].plugins.rate-limit.limits[1].burst: ${IGNORED} fixed-window: it would be ignored; set algorithm: token-bucket, or remove burst`,
    `gw.yaml:24:57 routes[1].plugins.rate-limit.limits[1].burst: ${IGNORED} sliding-window: it would be ignored; set algorithm: token-bucket, or remove burst`
  ])
})

// A consumer's overrides serve every route with a limit of that name: a burst for the routes where
// it is a bucket is ignored where it is not (it failed the start of a config that ran before).
t.test('a consumer\'s burst applies where the limit is a token bucket and is ignored where it is not', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `consumers:
  - id: acme
    metadata:
      rate-limit: { per-minute: { burst: 200 }, b: { algorithm: fixed-window, burst: 5 }, l: { algorithm: token-bucket, burst: 5 } }
plugins:
  test-auth: {}
routes:
${limitedRoute('uploads', '/uploads', '{ algorithm: token-bucket, limits: [ { name: per-minute, requests: 100, window: 1m } ] }')}\
${limitedRoute('search', '/search', '{ limits: [ { name: per-minute, requests: 100, window: 1m }, { name: b, requests: 10, window: 1s, burst: 20, algorithm: token-bucket }, { name: l, requests: 10, window: 1s } ] }')}`)
  t.teardown(() => gw.close())
  const acme = { 'x-consumer': 'acme' }
  t.same(rateLimitHeaders(await send(`${gw.url}/uploads`, acme)).policies, [{ name: 'per-minute', q: 200, w: 120 }])
  // Made another algorithm by the override, the limit's bucket is not the consumer's; made a bucket, the override's burst is.
  t.same(rateLimitHeaders(await send(`${gw.url}/search`, acme)).policies, [
    { name: 'per-minute', q: 100, w: 60 },
    { name: 'b', q: 10, w: 1 },
    { name: 'l', q: 5, w: 1 }
  ])
})
