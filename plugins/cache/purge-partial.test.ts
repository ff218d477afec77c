import t from 'tap'
import { request } from 'undici'
import { RedisStore } from '../../src/stores/redis-store.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { srandmemberCutProxy } from '../../test/helpers/redis-cut-proxy.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// A tag purge that loses Redis after some batches has deleted those: it answered "purged": 0,
// which told the operator nothing was done. It counts them, and says the purge is incomplete.
// Every write synced before its reply: what the purge deleted before the crash stays deleted.
const redis = await RedisProcess.start(['--appendonly', 'yes', '--appendfsync', 'always'])
t.teardown(() => redis.stop())

/**
 * The gateway's way to Redis: when it sends its `nth` SRANDMEMBER (a purge's next batch, the ones
 * before all done), Redis is killed, the command never sent. Later connections go through.
 */
async function killingProxy (nth: number): Promise<{ port: number, killed: Promise<void> }> {
  let killed = () => {}
  const port = await srandmemberCutProxy(t, redis.port, nth, () => { void redis.kill().then(() => killed()) })
  return { port, killed: new Promise(resolve => { killed = resolve }) }
}

const up = await startUpstream((_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '2' }).end('ok') })
t.teardown(() => up.close())

t.test('a tag purge that loses Redis after two batches: 503 with "purged": 400, incomplete; the next one deletes the rest', async t => {
  // 1,000 entries with the surrogate key "product", as the cache stores them.
  const filler = new RedisStore('filler', { url: redis.url, keyPrefix: 'pp:', connectTimeout: 1_000, commandTimeout: 5_000 }, { state () {}, failed () {}, command () {} })
  t.ok(await until(() => filler.snapshot().state === 'up'), 'the filling store connected')
  await Promise.all(Array.from({ length: 1_000 }, (_, i) => filler.set(`c:r:/items/${i}?#api.example.com|http|`, 'v', { tags: ['s:product'], ttlMs: 600_000 })))
  await filler.close()

  const proxy = await killingProxy(3)
  const gw = await startGateway(sharedStoreConfig(`redis://127.0.0.1:${proxy.port}`, up.url, 'pp:'))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string), 'the gateway\'s store is up')
  const purge = async () => {
    const res = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tag":"product"}' })
    return { status: res.statusCode, body: await res.body.json() as { purged: number, message?: string, unavailable?: string[] } }
  }

  const failed = await purge()
  await proxy.killed
  t.equal(failed.status, 503)
  t.match(failed.body, { error: 'store_unavailable', purged: 400, unavailable: ['shared'] }, 'the two batches deleted before Redis died are counted')
  t.match(failed.body.message, /^store "shared": \S.* \(after purging 400 key\(s\) there\); the purge is incomplete: send it again once the store is back, it goes on with what is left$/)

  await redis.restart()
  t.equal(await redis.cli('SCARD', 'pp:tag:{s:product}:purge'), '600', 'Redis is back with the 600 the purge had not reached')
  t.ok(await storeUp(gw.adminUrl as string), 'the gateway\'s store is up again')
  t.same(await purge(), { status: 200, body: { purged: 600 } }, 'the next purge deletes the rest')
  t.equal(await redis.cli('DBSIZE'), '0', 'nothing is left')
})
