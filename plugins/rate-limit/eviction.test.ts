import t from 'tap'
import { gateway, limitedRoute, metric, send, setup } from '../../test/helpers/rate-limit.ts'

// A memory store full of one route's keys evicts another route's counters: a key known to be over
// its limit stays rejected (the local pre-check), and the evictions are counted.

const SIZE = 50

t.test('a flood of new keys on one route does not reset a blocked client on another; evictions are counted', async t => {
  const s = await setup(t)
  const route = (name: string, extra: string) => `{ store: small, ${extra}by: [ ip ], limits: [ { name: ${name}, requests: 3, window: 1h } ] }`
  const gw = await gateway(s, `stores:
  small: { type: memory, maxEntries: ${SIZE} }
routes:
${limitedRoute('login', '/login', route('login', ''))}${limitedRoute('off', '/off', route('off', 'localPrecheck: false, '))}${limitedRoute('pub', '/pub', `{ store: small, by: [ "header:x-device" ], limits: [ { name: dev, requests: 100, window: 1h } ] }`)}`)
  t.teardown(() => gw.close())
  const admin = gw.adminUrl as string
  const evicted = 'portcullis_store_evictions_total{store="small",part="scripted"}'
  t.equal(await metric(admin, evicted), 0, 'the series exists from the start')
  t.equal(await metric(admin, 'portcullis_store_evictions_total{store="small",part="values"}'), 0)

  const statuses = async (path: string, n: number) => {
    const out: number[] = []
    for (let i = 0; i < n; i++) out.push((await send(`${gw.url}${path}`)).status)
    return out
  }
  t.same(await statuses('/login', 4), [200, 200, 200, 429])
  t.same(await statuses('/off', 4), [200, 200, 200, 429])
  const before = Number((await send(`${gw.url}/login`)).headers['retry-after'])

  for (let i = 0; i < 2 * SIZE; i++) t.equal((await send(`${gw.url}/pub`, { 'x-device': `d${i}` })).status, 200)
  t.ok((await metric(admin, evicted) ?? 0) >= SIZE, 'the flood evicted counters, and they were counted')
  t.equal(await metric(admin, 'portcullis_store_evictions_total{store="small",part="values"}'), 0, 'no value was set')

  const after = await send(`${gw.url}/login`)
  t.equal(after.status, 429, 'still blocked: its counter was evicted, the pre-check remembers')
  const wait = Number(after.headers['retry-after'])
  t.ok(wait <= before && wait > before - 60, `until its time: Retry-After ${wait}, ${before} before the flood`)
  t.equal((await send(`${gw.url}/off`)).status, 200, 'localPrecheck: false: the evicted counter starts again (what the docs warn of)')
})
