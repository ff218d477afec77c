import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { entryStored, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream, type TestUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// A leader whose client stops reading a large body: the cache has the upstream's bytes long before
// the exchange ends (and the entry is written). Nobody else may wait for that client.
const BIG = Buffer.alloc(12 * 1024 * 1024, 'b')
const HOST = 'api.example.com'
// A bound far below collapseTimeout (10s), not a measure of speed.
const BOUND_MS = 5_000
const CACHE = '{ store: STORE, maxObjectSize: 16MiB, collapseTimeout: 10s }'

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

/** An upstream answering BIG, fresh for a minute; `asked()`: the requests it received. */
async function bigUpstream (t: Test): Promise<TestUpstream & { asked: () => number }> {
  let n = 0
  const up = await startUpstream((req, res) => {
    n++
    req.resume()
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': BIG.length }).end(BIG)
  })
  t.teardown(() => up.close())
  return Object.assign(up, { asked: () => n })
}

/** A gateway caching everything on `store` (memory, or Redis under `prefix`). */
async function gateway (t: Test, up: TestUpstream, store: 'memory' | 'shared', prefix = ''): Promise<TestGateway> {
  const gw = await startGateway(sharedStoreConfig(redis.url, up.url, prefix, `{ cache: ${CACHE.replace('STORE', store)} }`))
  t.teardown(() => gw.close())
  if (store === 'shared') t.ok(await storeUp(gw.adminUrl as string), 'the Redis store is up')
  return gw
}

/**
 * Client A: a raw GET of /api/big that reads 20 KB and stops. Resolves once `gw`'s upstream request
 * for it is over (the cache has every byte), its client still not reading.
 */
async function stalledLeader (t: Test, gw: TestGateway): Promise<Socket> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let received = 0
  socket.on('error', () => {}).on('data', (chunk: Buffer) => {
    // Stops once, at 20 KB; finish() has it read the rest.
    if (received < 20_000 && (received += chunk.length) >= 20_000) socket.pause()
  })
  socket.write(`GET /api/big HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`)
  const target = () => gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]
  t.ok(await until(() => target()?.inFlight === 1), 'A\'s request is upstream')
  t.ok(await until(() => target()?.inFlight === 0), 'A\'s upstream request is over')
  // The capture ends a few ticks after the upstream's body does: nothing outside shows it.
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(gw.gateway.runtime.inFlight, 1, 'A\'s client has not read it all')
  return socket
}

/** Client B (or C): the same GET, timed. */
async function timedGet (gw: TestGateway): Promise<{ ms: number, status: number, length: number, cacheStatus: string }> {
  const started = performance.now()
  const res = await request(`${gw.url}/api/big`, { headers: { host: HOST } })
  const length = (await res.body.arrayBuffer()).byteLength
  return { ms: performance.now() - started, status: res.statusCode, length, cacheStatus: String(res.headers['cache-status']) }
}

/** A's client reads the rest; resolves once its gateway logged the request. */
async function finish (gw: TestGateway, socket: Socket): Promise<void> {
  const closed = once(socket, 'close')
  socket.resume()
  await closed
  await waitForLog(gw.logs, { msg: 'request', path: '/api/big' })
}

/** The entries (not tag records, not fetch locks) Redis holds under `prefix`. */
const entries = async (prefix: string) => (await redis.cli('KEYS', `${prefix}*`)).split('\n')
  .filter(k => k !== '' && !k.startsWith(`${prefix}tag:{`) && !k.endsWith('#fetch'))

for (const store of ['memory', 'shared'] as const) {
  t.test(`${store} store: a request while the leader's client still reads gets the captured entry at once`, async t => {
    const up = await bigUpstream(t)
    const prefix = 'one:'
    const gw = await gateway(t, up, store, prefix)
    const a = await stalledLeader(t, gw)
    const b = await timedGet(gw)
    t.same([b.status, b.length], [200, BIG.length])
    t.ok(b.ms < BOUND_MS, `answered in ${Math.round(b.ms)} ms, not after collapseTimeout`)
    t.match(b.cacheStatus, /fwd=uri-miss; fwd-status=200; collapsed/, 'collapsed onto A\'s fetch')
    t.equal(up.asked(), 1, 'one upstream request')
    t.equal(gw.gateway.runtime.inFlight, 1, 'A\'s client still has not read it all')
    if (store === 'shared') t.same(await entries(prefix), [], 'not written while A\'s exchange goes on')
    await finish(gw, a)
    if (store === 'shared') await entryStored(redis, prefix)
    const c = await timedGet(gw)
    t.match(c.cacheStatus, /hit/, 'stored once A\'s exchange ended')
    t.equal(up.asked(), 1)
  })
}

t.test('Redis store, two gateways: the other gateway waits for the leader\'s upstream, not for its client', async t => {
  const up = await bigUpstream(t)
  const prefix = 'two:'
  const [one, other] = [await gateway(t, up, 'shared', prefix), await gateway(t, up, 'shared', prefix)]
  const a = await stalledLeader(t, one)
  const b = await timedGet(other)
  t.same([b.status, b.length], [200, BIG.length])
  t.ok(b.ms < BOUND_MS, `answered in ${Math.round(b.ms)} ms, not after collapseTimeout`)
  t.match(b.cacheStatus, /fwd=uri-miss; fwd-status=200; stored/, 'nothing stored yet: fetched again')
  t.equal(up.asked(), 2, 'the other gateway asked the upstream itself')
  // Where A's fetch runs, the captured entry answers, or the other gateway's, once it has stored it.
  const c = await timedGet(one)
  t.match(c.cacheStatus, /collapsed|hit/)
  t.ok(c.ms < BOUND_MS)
  t.equal(up.asked(), 2)
  await finish(one, a)
})
