import t from 'tap'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'
import { gateway, limitedRoute, setup } from '../../test/helpers/rate-limit.ts'

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

t.test('a consumer\'s burst on a limit its override leaves (or makes) another algorithm fails the start; one that makes it a bucket is fine', async t => {
  const s = await setup(t)
  const limits = '{ limits: [ { name: l, requests: 10, window: 1s }, { name: b, requests: 10, window: 1s, burst: 20, algorithm: token-bucket } ] }'
  await t.rejects(gateway(s, `consumers:
  - id: eager
    metadata:
      rate-limit: { l: { burst: 5 } }
routes:
${limitedRoute('r', '/*', limits)}`), new RegExp(`consumer "eager", metadata\\.rate-limit\\.l: ${IGNORED} sliding-window`))
  await t.rejects(gateway(s, `consumers:
  - id: back
    metadata:
      rate-limit: { b: { algorithm: fixed-window, burst: 5 } }
routes:
${limitedRoute('r', '/*', limits)}`), new RegExp(`consumer "back", metadata\\.rate-limit\\.b: ${IGNORED} fixed-window`))
  // Made a bucket by the override (its burst used), or made another algorithm without a burst of its own: the limit's bucket is not the consumer's.
  const gw = await gateway(s, `consumers:
  - id: bucket
    metadata:
      rate-limit: { l: { algorithm: token-bucket, burst: 5 }, b: { algorithm: sliding-window } }
routes:
${limitedRoute('r', '/*', limits)}`)
  await gw.close()
})
