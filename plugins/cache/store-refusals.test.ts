import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { REFUSALS } from '../../test/helpers/redis-refusals.ts'
import { numberingUpstream, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { eventually } from '../../test/stores/store-cases.ts'

// Redis busy with another client's script, or refusing writes for a while (a failed save, too few
// replicas), is an outage, not an answer about the key: an invalidation it refused is retried once it
// is over, and a read it refused passes the request through, no entry taken for unreadable.
const up = await numberingUpstream()
t.teardown(() => up.close())

for (const refusal of REFUSALS) {
  t.test(`${refusal.reply}: an invalidation refused is retried once it is over; a read refused is a bypass`, async t => {
    const redis = await RedisProcess.start()
    t.teardown(() => redis.stop())
    const gw = await startGateway(sharedStoreConfig(redis.url, up.url, 'sr:'))
    t.teardown(() => gw.close())
    t.ok(await storeUp(gw.adminUrl as string))
    const get = async (path: string, method = 'GET') => {
      const res = await request(`${gw.url}${path}`, { method: method as 'GET' })
      await res.body.text()
      return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']) }
    }
    const hit = async (path: string) => {
      for (let i = 0; i < 100; i++) if ((await get(path)).cacheStatus.startsWith('Portcullis; hit')) return true
      return false
    }
    const metric = (name: string) => metricValue(gw.adminUrl as string, `portcullis_cache_${name}_total{route="r"}`)
    t.ok(await hit('/a'), '/a stored')
    t.ok(await hit('/b'), '/b stored')
    const end = await refusal.start(redis)
    if (refusal.reads) t.match((await get('/b')).cacheStatus, /^Portcullis; hit/, 'reads are answered')
    else t.match((await get('/b')).cacheStatus, /^Portcullis; fwd=bypass; fwd-status=200; detail=store-unavailable$/, 'a read refused is a bypass')
    t.equal((await get('/a', 'POST')).status, 200)
    t.equal(await eventually(() => metric('invalidation_failures'), 1), 1, 'the refused invalidation counted')
    await end()
    let status = ''
    for (let i = 0; i < 50 && !status.includes('fwd=uri-miss'); i++) {
      status = (await get('/a')).cacheStatus
      if (!status.includes('fwd=uri-miss')) await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.match(status, /fwd=uri-miss/, 'invalidated by a retry once Redis is over it')
    t.equal(await metric('corrupt_entries'), 0, 'no entry taken for unreadable')
  })
}
