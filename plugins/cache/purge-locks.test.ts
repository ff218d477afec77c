import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'

// A fetch under way on one gateway holds its key's fetch lock in Redis: a purge through another
// gateway counts the entries it deletes, not the lock, and leaves the lock to its fetch.

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

let release = () => {}
const held = new Promise<void>(resolve => { release = resolve })
t.teardown(() => release())
const up = await startUpstream((req, res) => {
  const body = `${req.url as string}`
  void held.then(() => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) }).end(body))
})
t.teardown(() => up.close())

const PREFIX = 'locks:'
const config = sharedStoreConfig(redis.url, up.url, PREFIX)
const [a, b] = await Promise.all([startGateway(config), startGateway(config)])
t.teardown(() => Promise.all([a.close(), b.close()]))
t.ok(await storeUp(a.adminUrl as string) && await storeUp(b.adminUrl as string), 'both stores up')

const purge = async (body: object) => {
  const res = await request(`${b.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.statusCode, body: await res.body.json() }
}
const locks = async () => (await redis.cli('KEYS', `${PREFIX}*#fetch`)).split('\n').filter(k => k !== '')

t.test('URL, prefix and full purges count no fetch lock of another gateway, and leave it', async t => {
  const fetching = request(`${a.url}/slow`, { headers: { host: 'api.example.com' } })
  let lock: string[] = []
  for (let i = 0; i < 250 && lock.length === 0; i++) {
    lock = await locks()
    if (lock.length === 0) await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.equal(lock.length, 1, 'a holds the fetch of /slow')
  t.same(await purge({ url: 'http://api.example.com/slow' }), { status: 200, body: { purged: 0 } }, 'by URL: nothing stored, nothing purged')
  t.same(await purge({ prefix: '/sl' }), { status: 200, body: { purged: 0 } }, 'by prefix')
  t.same(await purge({ all: true }), { status: 200, body: { purged: 0 } }, 'all')
  t.same(await locks(), lock, 'the lock is still held')
  release()
  const res = await fetching
  t.equal(await res.body.text(), '/slow')
})
