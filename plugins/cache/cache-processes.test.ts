import t, { type Test } from 'tap'
import { request } from 'undici'
import { spawnCli, stopCli } from '../../test/helpers/cli.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { configFile } from '../../test/reload/helpers.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { entryStored, numberingUpstream, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'

// Two processes on one redis-server of the test's own: `portcullis start` (the real CLI) and a
// gateway in this process; they share nothing but Redis. The CLI compiles the sources through
// tsx at start: on a loaded machine that takes most of a minute.
t.setTimeout(300_000)
const START_MS = 120_000
const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

const up = await numberingUpstream()
t.teardown(() => up.close())

const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
${sharedStoreConfig(redis.url, up.url, 'two-processes:')}`)
t.teardown(() => cf.remove())

interface Gateway { readonly url: string, readonly admin: string }

async function spawned (t: Test): Promise<Gateway> {
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(() => stopCli(cli))
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening', START_MS)
  if (listening === undefined) throw new Error(`the gateway did not start (stderr: ${cli.stderr()})`)
  const gw = { url: String(listening.url), admin: String(listening.admin) }
  t.ok(await storeUp(gw.admin), 'its Redis store is up')
  return gw
}

async function here (t: Test): Promise<Gateway> {
  const running = await startGateway(sharedStoreConfig(redis.url, up.url, 'two-processes:'))
  t.teardown(() => running.close())
  const gw = { url: running.url, admin: running.adminUrl as string }
  t.ok(await storeUp(gw.admin), 'its Redis store is up')
  return gw
}

async function get (gw: Gateway, path: string): Promise<{ status: number, cacheStatus: string, body: string }> {
  // One public host name in front of both (the Host is part of the key).
  const res = await request(`${gw.url}${path}`, { headers: { host: 'api.example.com' } })
  return { status: res.statusCode, cacheStatus: fresh(String(res.headers['cache-status'])), body: await res.body.text() }
}

const purge = async (gw: Gateway, body: object) => {
  const res = await request(`${gw.admin}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.statusCode, body: await res.body.json() }
}

t.test('two gateway processes share one Redis cache store', async t => {
  const [a, b] = await Promise.all([spawned(t), here(t)])
  t.not(a.url, b.url, 'two listeners')

  const first = await get(a, '/items/1')
  t.same(first, { status: 200, cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60', body: '/items/1 #1' })
  await entryStored(redis, 'two-processes:')
  const fromB = await get(b, '/items/1')
  t.equal(fromB.status, 200)
  t.match(fromB.cacheStatus, /^Portcullis; hit; ttl=\d+$/, 'a hit in the other process')
  t.equal(fromB.body, '/items/1 #1', 'the body the first process stored')
  t.equal(up.requests(), 1, 'the upstream was asked once')

  t.same(await purge(a, { url: 'http://api.example.com/items/1' }), { status: 200, body: { purged: 1 } }, 'purged by URL through the first process')
  t.same(await get(b, '/items/1'), { status: 200, cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60', body: '/items/1 #2' },
    'the second process no longer finds it')

  await entryStored(redis, 'two-processes:')
  const fromA = await get(a, '/items/1')
  t.match(fromA.cacheStatus, /^Portcullis; hit; ttl=\d+$/, 'a hit in the first process')
  t.equal(fromA.body, '/items/1 #2', 'what the second process stored is a hit in the first')
  t.same(await purge(b, { tag: 'shared' }), { status: 200, body: { purged: 1 } }, 'purged by tag through the second process')
  t.same(await get(a, '/items/1'), { status: 200, cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60', body: '/items/1 #3' },
    'the first process no longer finds it')
  t.equal(up.requests(), 3)
})
