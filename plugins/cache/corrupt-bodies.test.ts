import type { ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { rig, type Rig } from '../../test/helpers/cache-rig.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { entryStored, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from '../../test/helpers/user-plugin.ts'
import { until } from '../../test/helpers/wait.ts'

// The cache with compress above it: compress decodes a gzip body for a client that does not take
// gzip, and is then the one to find that the upstream's bytes do not decode.
const TEXT = 'the same line of text, again and again\n'.repeat(4000)
const GZIPPED = gzipSync(TEXT)
const BODIES: Record<string, Buffer> = {
  '/garbage': Buffer.from('not gzip at all'),
  '/truncated': GZIPPED.subarray(0, GZIPPED.length - 6),
  '/good': GZIPPED
}

const send = (res: ServerResponse, body: Buffer) => {
  res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-encoding': 'gzip', 'content-type': 'text/plain', 'content-length': body.length }).end(body)
}

const GZIP = { 'accept-encoding': 'gzip' }

/** `hold`: the upstream answers once it resolves; `plugin`: the file of a user plugin named `fail-once` for the route too. */
async function compressRig (t: Test, hold?: Promise<void>, plugin?: string): Promise<Rig> {
  const plugins = plugin === undefined ? 'plugins: { compress: {} }' : `loadPlugins: [ "${plugin}" ]\nplugins: { compress: {}, fail-once: {} }`
  return await rig(t, (req, res) => {
    const body = BODIES[req.url as string] as Buffer
    if (hold === undefined) send(res, body)
    else void hold.then(() => send(res, body))
  }, '{ collapseTimeout: 14s }', plugins)
}

/** A GET that resolves with its status and whether its body arrived whole (false: cut), never rejects. */
async function fetchWhole (r: Rig, path: string, headers: Record<string, string> = {}): Promise<{ status: number, whole: boolean, cacheStatus: string, body: Buffer }> {
  const res = await request(`${r.gw.url}${path}`, { headers })
  try {
    const body = Buffer.from(await res.body.arrayBuffer())
    return { status: res.statusCode, whole: true, cacheStatus: String(res.headers['cache-status']), body }
  } catch {
    return { status: res.statusCode, whole: false, cacheStatus: String(res.headers['cache-status']), body: Buffer.alloc(0) }
  }
}

const upstreamAsked = (r: Rig, path: string) => r.seen.filter(s => s.url === path).length

t.test('a gzip body that does not decode for the client it was fetched for is not stored', async t => {
  const r = await compressRig(t)
  const first = await fetchWhole(r, '/garbage')
  t.equal(first.status, 502, 'the identity client gets the gateway\'s 502')
  // No entry: each next client, whichever coding it takes, goes upstream again.
  const again = await fetchWhole(r, '/garbage')
  t.equal(again.status, 502)
  t.equal(upstreamAsked(r, '/garbage'), 2, 'an identity client asking again: the upstream is asked again')
  const gzip = await fetchWhole(r, '/garbage', GZIP)
  t.equal(upstreamAsked(r, '/garbage'), 3, 'a gzip client: the upstream is asked again')
  t.equal(gzip.status, 200, 'the gzip client gets the upstream\'s bytes as they came (nothing in its path decodes them)')
  t.notMatch(gzip.cacheStatus, /hit/)
})

t.test('a truncated gzip body, cut for the client it was decoded for, is not stored', async t => {
  const r = await compressRig(t)
  const first = await fetchWhole(r, '/truncated')
  t.same([first.status, first.whole], [200, false], 'the decoded answer is cut')
  t.match(await waitForLog(r.gw.logs, { msg: 'request', path: '/truncated' }), { status: 200, error: 'upstream_broken' })
  const again = await fetchWhole(r, '/truncated')
  t.same([again.status, again.whole], [200, false])
  t.equal(upstreamAsked(r, '/truncated'), 2, 'an identity client asking again: the upstream is asked again')
  const gzip = await fetchWhole(r, '/truncated', GZIP)
  t.equal(upstreamAsked(r, '/truncated'), 3, 'a gzip client: the upstream is asked again')
  t.same([gzip.status, gzip.whole], [200, true])
  t.notMatch(gzip.cacheStatus, /hit/)
})

t.test('a good gzip body is stored, and served to both kinds of clients', async t => {
  const r = await compressRig(t)
  const first = await fetchWhole(r, '/good')
  t.same([first.status, first.body.toString()], [200, TEXT])
  t.match(first.cacheStatus, /stored/)
  t.equal((await fetchWhole(r, '/good')).body.toString(), TEXT)
  t.same((await fetchWhole(r, '/good', GZIP)).body, GZIPPED)
  t.equal(upstreamAsked(r, '/good'), 1)
})

t.test('a stored body that a hit finds bad is dropped: it was stored through a client that did not decode it', async t => {
  for (const path of ['/garbage', '/truncated']) {
    const r = await compressRig(t)
    t.match((await fetchWhole(r, path, GZIP)).cacheStatus, /stored/, `${path}: nothing tells a gzip client's answer is bad`)
    const hit = await fetchWhole(r, path)
    t.ok(hit.status === 502 || !hit.whole, `${path}: the identity client's hit fails`)
    t.equal(upstreamAsked(r, path), 1)
    const after = await fetchWhole(r, path)
    t.notMatch(after.cacheStatus, /hit/, `${path}: the entry is gone`)
    t.equal(upstreamAsked(r, path), 2, `${path}: the upstream is asked again`)
  }
})

t.test('requests collapsed on a fetch whose body is bad get what it got; nothing is stored', async t => {
  for (const path of ['/garbage', '/truncated']) {
    let release!: () => void
    const hold = new Promise<void>(resolve => { release = resolve })
    t.teardown(() => release())
    const r = await compressRig(t, hold)
    const leader = fetchWhole(r, path)
    t.ok(await until(() => upstreamAsked(r, path) === 1))
    const waiters = [fetchWhole(r, path), fetchWhole(r, path), fetchWhole(r, path, GZIP)]
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 4), 'the waiters are at the gateway')
    release()
    const [lead, ...rest] = await Promise.all([leader, ...waiters])
    const failed = (a: { status: number, whole: boolean }) => a.status === 502 || !a.whole
    t.ok(failed(lead as { status: number, whole: boolean }), `${path}: the leader's answer fails`)
    t.same(rest.slice(0, 2).map(failed), [true, true], `${path}: so do the identity waiters'`)
    t.equal(rest[2]?.status, 200, `${path}: the gzip waiter gets the bytes as they came`)
    t.equal(upstreamAsked(r, path), 1, `${path}: one upstream request for all`)
    // Once they are all over: nothing stored.
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
    const after = await fetchWhole(r, path)
    t.notMatch(after.cacheStatus, /hit/)
    t.equal(upstreamAsked(r, path), 2, `${path}: the next request goes upstream`)
  }
})

t.test('a failure of a plugin\'s own stream after the cache does not unstore the upstream\'s good bytes', async t => {
  // A stream closer to the client than the cache's capture that fails the first response it carries.
  const state = sharedWithPlugins<{ calls: number }>('failOnce', { calls: 0 })
  const plugin = writeUserPlugin(t.testdir({}), 'fail-once', 600, `{
    onResponse: async (res: any) => {
      if (shared('failOnce').calls++ !== 0) return
      const { Transform } = await import('node:stream')
      res.pipeThrough(new Transform({ transform (_c: any, _e: any, cb: any) { cb(new Error('failed on purpose')) } }))
    }
  }`)
  const r = await compressRig(t, undefined, plugin)
  const first = await fetchWhole(r, '/good')
  t.equal(first.status, 500, 'the plugin\'s failure')
  t.equal(state.calls, 1)
  const second = await fetchWhole(r, '/good')
  t.match(second.cacheStatus, /hit/, 'the upstream\'s bytes were stored')
  t.equal(second.body.toString(), TEXT)
  t.equal(upstreamAsked(r, '/good'), 1)
})

t.test('on a Redis store: a bad body is not written, and the fetch it took for every instance is given back', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const r = await compressRig(t)
  const gw = await startGateway(sharedStoreConfig(redis.url, r.up.url, 'cc:', '{ cache: { store: shared }, compress: {} }'))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))
  const keys = async () => (await redis.cli('KEYS', 'cc:*')).split('\n').filter(k => k !== '')
  t.equal((await request(`${gw.url}/garbage`)).statusCode, 502)
  t.ok(await waitForLog(gw.logs, { msg: 'request', path: '/garbage' }))
  // The fetch is given back a Redis round trip after the exchange ends.
  let left = await keys()
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise(resolve => setTimeout(resolve, 20))
    left = await keys()
  }
  t.same(left, [], 'no entry, no fetch held')
  t.equal((await request(`${gw.url}/garbage`)).statusCode, 502)
  t.equal(upstreamAsked(r, '/garbage'), 2, 'asked again')
  t.equal(Buffer.from(await (await request(`${gw.url}/good`)).body.arrayBuffer()).toString(), TEXT)
  await entryStored(redis, 'cc:')
})
