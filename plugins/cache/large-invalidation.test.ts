import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { entryStored, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { eventually } from '../../test/stores/store-cases.ts'

// An invalidation of a URL whose tag set is huge (10,000 members, as a path under many queries
// grew it before sets were pruned): it goes a batch at a time. All at once (a GET per member in one
// go), its last commands waited past the default commandTimeout of 100 ms: the invalidation failed
// and was retried whole every second, and the failures took the store for down. (commandTimeout
// 2 s here, so that a loaded machine fails nothing: the batches are what the test checks.)
const { redis, raw } = await redisWithClient(t)

let n = 0
const up = await startUpstream((req, res) => {
  const body = `${req.url as string} #${++n}`
  res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) }).end(body)
})
t.teardown(() => up.close())

const PREFIX = 'inv:'
const gw = await startGateway(`${sharedStoreConfig(redis.url, up.url, PREFIX)}logging: { level: warn }\n`)
t.teardown(() => gw.close())
t.ok(await storeUp(gw.adminUrl as string))

const send = async (path: string, method = 'GET') => {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { host: 'api.example.com' } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}

t.test('DELETE of a URL whose tag set has 10,000 members: invalidated a batch at a time, at once', async t => {
  t.match((await send('/flood')).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  await entryStored(redis, PREFIX)
  t.match((await send('/flood')).cacheStatus, /^Portcullis; hit/)
  const tagSet = `${PREFIX}tag:{u:api.example.com/flood}`
  for (let i = 0; i < 10_000; i += 5_000) await raw.sadd(tagSet, ...Array.from({ length: 5_000 }, (_, j) => `${PREFIX}c:r:/flood?_=${i + j}#api.example.com|http|`))
  const monitor = await redis.monitor()
  t.teardown(() => monitor.close())
  t.equal((await send('/flood', 'DELETE')).status, 200)
  // The unsafe request's answer waits for its invalidation 100 ms at most: the rest goes on after it.
  t.equal(await eventually(() => raw.exists(`${tagSet}:purge`), 0, 10_000), 0, 'the whole set was purged')
  t.match((await send('/flood')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'the entry stored before the DELETE is gone')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_cache_invalidation_failures_total{route="r"}'), 0, 'no invalidation failed')
  await raw.echo('done')
  t.ok(await until(() => monitor.commands.includes('echo')), 'the monitor has seen every command')
  // One GET per member (its tag record), a batch's worth before the batch is done and the next read.
  let run = 0
  let longest = 0
  for (const c of monitor.commands) longest = Math.max(longest, run = c === 'get' ? run + 1 : 0)
  t.ok(longest <= 200, `at most 200 GETs in a row (${longest})`)
})
