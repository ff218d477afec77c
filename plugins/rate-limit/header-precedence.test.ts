import t from 'tap'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { gateway, limitedRoute, send, setup } from '../../test/helpers/rate-limit.ts'

// rate-limit's headers go to extraResponseHeaders, written after every response hook: on a 200 and
// on its own 429 alike they win over response-headers' edits and over an upstream's own fields.

t.test('response-headers cannot edit rate-limit\'s headers, on a 200 or a 429; the 429\'s body agrees with its Retry-After', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      response-headers: { remove: [ ratelimit ], set: { RateLimit-Policy: hidden, Retry-After: "3600", x-edited: "yes" } }
      rate-limit: { by: [ "header:x-k" ], algorithm: fixed-window, limits: [ { name: m, requests: 1, window: 1m } ] }
`)
  t.teardown(() => gw.close())
  const k = { 'x-k': 'k' }
  const ok = await send(`${gw.url}/`, k)
  const no = await send(`${gw.url}/`, k)
  t.same([ok.status, no.status], [200, 429])
  for (const a of [ok, no]) {
    t.equal(a.headers['x-edited'], 'yes', `${a.status}: response-headers ran`)
    t.equal(a.headers['ratelimit-policy'], '"m";q=1;w=60', `${a.status}: rate-limit's policy`)
    t.match(a.headers.ratelimit, /^"m";r=0;t=\d+$/, `${a.status}: RateLimit not removed`)
  }
  t.equal(ok.headers['retry-after'], '3600', 'a 200 has no Retry-After of rate-limit\'s: response-headers\' stays')
  const retry = Number(no.headers['retry-after'])
  t.ok(retry >= 1 && retry <= 60, `the 429's Retry-After is rate-limit's (${retry})`)
  t.equal(no.body.retryAfter, retry, 'and its body says the same')
})

t.test('an upstream\'s own rate-limit fields: those of the names rate-limit writes are replaced, the others pass', async t => {
  const upstream = await startUpstream((_req, res) => {
    const body = '{}'
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': body.length,
      'ratelimit-policy': '"upstream";q=9;w=9',
      ratelimit: '"upstream";r=8;t=9',
      'x-ratelimit-limit': '9',
      'x-ratelimit-remaining': '8',
      'x-ratelimit-reset': '9'
    })
    res.end(body)
  })
  t.teardown(() => upstream.close())
  const s = { ...await setup(t), upstream }
  const modes = ['ietf', 'legacy', 'both', 'none'] as const
  const gw = await gateway(s, `consumers:
  - { id: exempt, metadata: { rate-limit: { m: false } } }
plugins:
  test-auth: {}
routes:
${modes.map(m => limitedRoute(m, `/${m}/*`, `{ headers: ${m}, limits: [ { name: m, requests: 100, window: 1m } ] }`)).join('')}  - name: hidden
    match: { path: /hidden/* }
    upstream: up
    plugins:
      response-headers: { remove: [ ratelimit, ratelimit-policy, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset ] }
      rate-limit: { limits: [ { name: m, requests: 100, window: 1m } ] }
`)
  t.teardown(() => gw.close())
  const theirs: Record<string, string> = { 'ratelimit-policy': '"upstream";q=9;w=9', ratelimit: '"upstream";r=8;t=9', 'x-ratelimit-limit': '9', 'x-ratelimit-remaining': '8', 'x-ratelimit-reset': '9' }
  const sets = { ietf: ['ratelimit-policy', 'ratelimit'], legacy: ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'] }
  for (const mode of modes) {
    const a = await send(`${gw.url}/${mode}/`)
    t.equal(a.status, 200)
    for (const set of ['ietf', 'legacy'] as const) {
      const written = mode === set || mode === 'both'
      for (const name of sets[set]) {
        if (written) t.not(a.headers[name], theirs[name], `${mode}: ${name} is the gateway's (${String(a.headers[name])})`)
        else t.equal(a.headers[name], theirs[name], `${mode}: the upstream's ${name} passes`)
      }
    }
  }
  const hidden = await send(`${gw.url}/hidden/`)
  t.same(Object.keys(theirs).map(name => hidden.headers[name] !== undefined), [true, true, false, false, false], 'response-headers removes the upstream\'s; the gateway\'s are written after it')
  t.equal(hidden.headers['ratelimit-policy'], '"m";q=100;w=60')
  const exempt = await send(`${gw.url}/both/`, { 'x-consumer': 'exempt' })
  t.same(Object.keys(theirs).map(name => exempt.headers[name]), Object.values(theirs), 'a consumer exempt from every limit gets the upstream\'s, all of them')
})
