import t, { type Test } from 'tap'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { RedisStore, type RedisStoreEvents, type RedisStoreSettings } from '../../src/stores/redis-store.ts'
import { defineScript, type StoreSnapshot } from '../../src/stores/store.ts'
import { startGateway } from '../helpers/gateway.ts'
import { freePort } from '../helpers/ports.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { writeCounterPlugin } from './counter-plugin.ts'
import { counter, eventually, storeCases } from './store-cases.ts'

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())
const raw = redis.client()
raw.on('error', () => {}) // while the server is killed on purpose
t.teardown(() => raw.quit())

const quiet: RedisStoreEvents = { state () {}, failed () {}, command () {} }

/** A RedisStore on `redis` (settings overridable), closed at teardown, once it is up. */
async function upStore (t: Test, settings: Partial<RedisStoreSettings> = {}, events = quiet): Promise<RedisStore> {
  const store = new RedisStore('test', { url: redis.url, keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 2_000, ...settings }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return store
}

t.test('the shared store cases, on a standalone server', async t => {
  const store = await upStore(t)
  storeCases(t, () => store, 'r:')
})

t.test('keyPrefix is applied to every key: set, scripts and tags; deletePrefix stays inside it', async t => {
  const one = await upStore(t, { keyPrefix: 'app1:' })
  const two = await upStore(t, { keyPrefix: 'app2:' })
  await one.set('k', 'from one', { tags: ['t'] })
  await two.set('k', 'from two')
  t.equal(await raw.get('app1:k'), 'from one')
  t.equal(await raw.get('app2:k'), 'from two')
  t.same(await raw.smembers('app1:tag:{t}'), ['app1:k'], 'the tag set holds the full key')
  t.equal(await one.run(counter, ['{c}:n'], [0]), 1)
  t.equal(await raw.get('app1:{c}:n'), '1', 'script keys are prefixed')
  t.equal(await one.deletePrefix(''), 2, 'deletePrefix("") empties app1: only (k and the counter)')
  t.equal(await raw.exists('app1:tag:{t}'), 1, 'tag sets are not keys of the store: deletePrefix leaves them')
  await one.set('k2', 'tagged', { tags: ['t'] })
  t.equal(await one.deletePrefix('t'), 0, 'not even under a prefix they start with')
  t.equal(await one.deleteTag('t'), 1, 'so deleteTag still finds its keys')
  t.equal(await raw.get('app2:k'), 'from two')
  t.equal((await two.get('k'))?.toString(), 'from two')
})

t.test('a tag set lives as long as its longest-lived entry, no longer', async t => {
  const store = await upStore(t, { keyPrefix: 'ttl:' })
  // Long enough not to have expired by the PTTL that follows, even on a busy machine; shorter than the bound below.
  await store.set('a', '1', { tags: ['short'], ttlMs: 1_000 })
  const pttl = await raw.pttl('ttl:tag:{short}')
  t.ok(pttl > 0 && pttl <= 1_000, `the tag set expires with its only entry (PTTL ${pttl})`)
  await store.set('b', '2', { tags: ['short'], ttlMs: 60_000 })
  t.ok(await raw.pttl('ttl:tag:{short}') > 2_000, 'a longer-lived entry extends it')
  await store.set('c', '3', { tags: ['short'], ttlMs: 100 })
  t.ok(await raw.pttl('ttl:tag:{short}') > 2_000, 'a shorter-lived entry does not shorten it')
  await store.set('d', '4', { tags: ['short'] })
  t.equal(await raw.pttl('ttl:tag:{short}'), -1, 'an entry without TTL makes it persistent')
  await store.set('e', '5', { tags: ['short'], ttlMs: 100 })
  t.equal(await raw.pttl('ttl:tag:{short}'), -1, 'and it stays so')
  t.equal(await eventually(async () => await raw.exists('ttl:tag:{short}'), 1), 1)
  await store.set('f', '6', { tags: ['gone'], ttlMs: 50 })
  t.equal(await eventually(async () => await raw.exists('ttl:tag:{gone}'), 0), 0, 'an expired tag set is gone from the server')
})

t.test('a TTL beyond a safe integer is the longest there is, never none: the key, its tag record, tag set and expiry index all expire', async t => {
  const store = await upStore(t, { keyPrefix: 'far:' })
  for (const ttlMs of [1e19, Number.MAX_SAFE_INTEGER + 2]) {
    await store.set('k', 'v', { tags: ['t'], ttlMs })
    const keys = ['far:k', 'far:tag:{}far:k', 'far:tag:{t}', 'far:tag:{t}:expiry']
    const pttls = await Promise.all(keys.map(k => raw.pttl(k)))
    t.ok(pttls.every(p => p > Number.MAX_SAFE_INTEGER - 60_000), `${ttlMs}: PTTL ${pttls.join(', ')}`)
    await store.delete('k')
    await raw.del('far:tag:{t}', 'far:tag:{t}:expiry')
  }
})

/**
 * A TCP proxy to `redis` that can hold a client's commands at one point: once armed, the first
 * command chunk matching `after` goes through, and `paused` resolves when the server has answered
 * it; the client's later chunks wait until release().
 */
async function holdingProxy (t: Test, after: RegExp): Promise<{ port: number, arm: () => void, paused: Promise<void>, release: () => void }> {
  let state: 'open' | 'armed' | 'answering' | 'holding' = 'open'
  let paused = () => {}
  const held: Buffer[] = []
  let toServer: Socket | undefined
  const server = createServer(client => {
    const upstream = connect(redis.port, '127.0.0.1')
    toServer = upstream
    upstream.on('data', (d: Buffer) => {
      client.write(d)
      if (state === 'answering') { state = 'holding'; paused() }
    })
    client.on('data', (d: Buffer) => {
      if (state === 'answering' || state === 'holding') { held.push(d); return }
      upstream.write(d)
      if (state === 'armed' && after.test(d.toString('latin1'))) state = 'answering'
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.close(() => resolve()); toServer?.destroy() }))
  return {
    port: (server.address() as AddressInfo).port,
    arm: () => { state = 'armed' },
    paused: new Promise<void>(resolve => { paused = resolve }),
    release: () => { state = 'open'; for (const d of held.splice(0)) toServer?.write(d) }
  }
}

t.test('deleteTag: a key set with the tag while it runs, new or just deleted, stays in the tag for the next purge', async t => {
  // The purging instance's commands go through the proxy: held once it has deleted the entries.
  const proxy = await holdingProxy(t, /del\r\n\$\d+\r\nrace:page-1\r\n/i)
  // Its held command waits for the test's own calls below: a commandTimeout no loaded machine reaches.
  const purging = await upStore(t, { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: 'race:', commandTimeout: 30_000 })
  const storing = await upStore(t, { keyPrefix: 'race:' })
  await storing.set('page-1', 'old', { tags: ['big'] })
  await storing.set('page-2', 'old', { tags: ['big'] })
  proxy.arm()
  const purge = purging.deleteTag('big')
  await proxy.paused
  t.equal(await raw.exists('race:page-1', 'race:page-2'), 0, 'the purge has deleted both entries, and not ended')
  // Another instance stores meanwhile: page-1 again (a miss right after its purge), page-3 for the first time.
  await storing.set('page-1', 'new', { tags: ['big'] })
  await storing.set('page-3', 'new', { tags: ['big'] })
  proxy.release()
  t.equal(await purge, 2)
  t.same((await raw.smembers('race:tag:{big}')).sort(), ['race:page-1', 'race:page-3'], 'both are in the tag\'s set')
  t.equal(await purging.deleteTag('big'), 2, 'the next purge deletes them')
  t.equal(await raw.exists('race:page-1', 'race:page-3'), 0)
  t.same(await raw.keys('race:tag:*'), [], 'no tag set or record is left')
})

t.test('deleteTag: what a purge that failed midway left is deleted by the next one', async t => {
  const store = await upStore(t, { keyPrefix: 'left:' })
  await store.set('a', '1', { tags: ['t'], ttlMs: 60_000 })
  // As a purge leaves it that took the tag's set, then lost the server.
  await raw.rename('left:tag:{t}', 'left:tag:{t}:purge')
  await store.set('b', '2', { tags: ['t'] })
  t.equal(await store.deleteTag('t'), 2, 'a and b')
  t.same(await raw.keys('left:*'), [])
})

/** Calls of `name` (e.g. evalsha) the server counted since the last CONFIG RESETSTAT: [succeeded, failed]. */
async function calls (name: string): Promise<[number, number]> {
  const stats = await raw.info('commandstats')
  const m = new RegExp(`cmdstat_${name}:calls=(\\d+),.*failed_calls=(\\d+)`).exec(stats)
  return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)]
}

t.test('scripts run with EVALSHA, and are loaded again after SCRIPT FLUSH (NOSCRIPT)', async t => {
  const store = await upStore(t, { keyPrefix: 'sha:' })
  await raw.config('RESETSTAT')
  for (let i = 1; i <= 5; i++) t.equal(await store.run(counter, ['{s}:n'], [0]), i)
  // ioredis sends the text (EVAL, which loads it) the first time on a connection, EVALSHA after.
  t.same(await calls('evalsha'), [4, 0], 'calls 2 to 5 sent only the SHA')
  t.same(await calls('eval'), [1, 0], 'the script text was sent once')
  t.equal(await raw.script('FLUSH'), 'OK')
  t.equal(await store.run(counter, ['{s}:n'], [0]), 6, 'works after SCRIPT FLUSH')
  t.equal(await store.run(counter, ['{s}:n'], [0]), 7)
  t.same(await calls('evalsha'), [6, 1], 'the first call after the flush got NOSCRIPT')
  t.same(await calls('eval'), [2, 0], 'so the text was sent once more; then EVALSHA again')
})

/** Answers by its argument: an error reply, a raised error, nil, or an INCR of its key. */
const picky = defineScript<number | null>({
  name: 'test-picky',
  lua: `if ARGV[1] == 'reply' then return redis.error_reply('refused by the script') end
if ARGV[1] == 'raise' then return redis.call('NO-SUCH-COMMAND') end
if ARGV[1] == 'nil' then return nil end
return redis.call('INCR', KEYS[1])`,
  local () { throw new Error('a Redis-only test script') }
})

t.test('calls of one script in one turn go out as one EVALSHA; each gets its own result, errors included', async t => {
  const store = await upStore(t, { keyPrefix: 'batch:' })
  t.equal(await store.run(picky, ['{b}:n'], ['count']), 1, 'loaded (EVAL) by a first call')
  await raw.config('RESETSTAT')
  const counts = Array.from({ length: 30 }, () => store.run(picky, ['{b}:n'], ['count']))
  const odd = [store.run(picky, ['{b}:x'], ['nil']), store.run(picky, ['{b}:x'], ['reply']), store.run(picky, ['{b}:x'], ['raise'])]
  const settled = await Promise.allSettled([...counts, ...odd])
  // (Redis counts the command as failed: a redis.call inside it raised, even though caught.)
  t.equal((await calls('evalsha'))[0], 1, 'thirty-three calls, one command')
  t.same(await calls('eval'), [0, 0])
  const values = settled.slice(0, 30).map(r => r.status === 'fulfilled' ? r.value : r.reason)
  t.same(values, Array.from({ length: 30 }, (_, i) => i + 2), 'each call saw its own count, in the order made')
  t.strictSame(settled[30], { status: 'fulfilled', value: undefined }, 'nil is undefined, and does not cut the results after it short')
  t.match(settled[31], { status: 'rejected', reason: { message: 'refused by the script' } }, 'an error reply fails its call only')
  t.match(settled[32], { status: 'rejected', reason: { message: /Unknown Redis command|unknown command/i } }, 'so does an error raised by redis.call')
  t.equal(await raw.get('batch:{b}:n'), '31')
})

t.test('a batch holds at most 256 calls', async t => {
  const store = await upStore(t, { keyPrefix: 'big:' })
  t.equal(await store.run(counter, ['{b}:n'], [0]), 1)
  await raw.config('RESETSTAT')
  const counts = await Promise.all(Array.from({ length: 600 }, () => store.run(counter, ['{b}:n'], [0])))
  t.same(counts, Array.from({ length: 600 }, (_, i) => i + 2))
  t.same(await calls('evalsha'), [3, 0], '256 + 256 + 88')
})

t.test('a script error keeps its own line numbers: the batch wrapper adds none before it', async t => {
  const store = await upStore(t, { keyPrefix: 'lines:' })
  const broken = defineScript({ name: 'test-broken-line-3', lua: "local a = 1\nlocal b = 2\nreturn nil + a + b", local () { throw new Error('a Redis-only test script') } })
  await t.rejects(store.run(broken, [], []), { code: 'STORE_SCRIPT_ERROR', message: /user_script:3:/ })
})

t.test('a server not there: calls fail at once with code STORE_UNAVAILABLE', async t => {
  const store = new RedisStore('gone', { url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: 'pc:', connectTimeout: 500, commandTimeout: 500 }, quiet)
  t.teardown(() => store.close())
  await store.settled()
  for (const call of [store.get('k'), store.set('k', 'v'), store.run(counter, ['k'], [0])] as Array<Promise<unknown>>) {
    await t.rejects(call, { name: 'StoreError', code: 'STORE_UNAVAILABLE', cause: Error })
  }
})

t.test('a server that stops answering: calls fail within commandTimeout, none wait for it', async t => {
  const store = await upStore(t, { commandTimeout: 100, keyPrefix: 'stop:' })
  const pid = Number(/process_id:(\d+)/.exec(await raw.info('server'))?.[1])
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  const started = performance.now()
  const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => store.get(`k${i}`)))
  const ms = performance.now() - started
  t.equal(results.filter(r => r.status === 'rejected').length, 50, 'every call failed')
  t.match((results[0] as PromiseRejectedResult).reason, { code: 'STORE_UNAVAILABLE', message: /timed out/i })
  t.ok(ms < 3_000, `failed after ${Math.round(ms)} ms (commandTimeout 100 ms; the server is stopped until the test resumes it)`)
  t.equal(store.snapshot().state, 'up', 'timeouts all at one instant are not an outage')
  resume()
  t.equal(await eventually(async () => { try { await store.set('back', '1'); return (await store.get('back'))?.toString() } catch { return undefined } }, '1'), '1', 'works again once the server answers')
})

t.test('a server frozen while connected: down once calls have failed for a second, up again at the first answer', async t => {
  const states: Array<[StoreSnapshot['state'], string | null]> = []
  const store = await upStore(t, { commandTimeout: 100, keyPrefix: 'frozen:' }, { state (_s, state, error) { states.push([state, error]) }, failed () {}, command () {} })
  const pid = Number(/process_id:(\d+)/.exec(await raw.info('server'))?.[1])
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  // The connection stays open: only calls can tell. One at a time, each failing after commandTimeout.
  const callUntil = async (state: StoreSnapshot['state'], failedAt: number[] = []) => {
    for (const start = performance.now(); store.snapshot().state !== state && performance.now() - start < 5_000;) await store.get('k').catch(() => { failedAt.push(performance.now()) })
    return store.snapshot()
  }
  // When each call failed: which one took the store down, not how long that took (calls run late on a loaded machine).
  const failedAt: number[] = []
  const started = performance.now()
  t.match(await callUntil('down', failedAt), { state: 'down', lastError: /timed out/i }, 'down, with the calls\' error')
  t.ok(performance.now() - started >= 1_000, 'not before a second of failing calls')
  const before = (failedAt.at(-2) ?? Infinity) - (failedAt[0] ?? 0)
  t.ok(failedAt.length >= 3 && before < 1_200, `down at the first call failing a second after the first did (the call before failed after ${Math.round(before)} ms)`)
  resume()
  t.match(await callUntil('up'), { state: 'up', lastError: null }, 'up at the first call answered')
  t.same(states.map(([s]) => s), ['up', 'down', 'up'], 'one change each way')
  t.match(states[1]?.[1], /timed out/i, '"store is down" logs the calls\' error')
})

t.test('through a gateway', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  t.teardown(() => up.close())
  const secured = await RedisProcess.start(['--requirepass', 'default-pw-1', '--user', 'alice', 'on', '>alice-secret-9', '~*', '&*', '+@all'])
  t.teardown(() => secured.stop())
  // Down from the start: a server started then killed, restarted later on the same port.
  const late = await RedisProcess.start()
  t.teardown(() => late.stop())
  await late.kill()

  const dir = t.testdir({})
  writeCounterPlugin(dir)
  const route = (name: string, store: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: { hit-counter: { store: ${store}, key: ${name} } } }`
  const gw = await startGateway(`
admin:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./hit-counter.ts ]
stores:
  shared: { type: redis, url: "\${REDIS_URL}", keyPrefix: "gw:", commandTimeout: 2s, connectTimeout: 500ms }
  # 2 s: on a loaded machine a call may take longer than the default 100 ms (not what these test).
  secured: { type: redis, url: "${secured.url}", username: alice, password: "\${REDIS_PASSWORD}", commandTimeout: 2s }
  wrong: { type: redis, url: "${secured.url}", username: alice, password: "\${WRONG_PASSWORD}", commandTimeout: 2s }
  late: { type: redis, url: "${late.url}", connectTimeout: 200ms }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${[['shared', 'shared'], ['secured', 'secured'], ['wrong', 'wrong'], ['late', 'late'], ['local', 'memory']].map(([n, s]) => route(n as string, s as string)).join('\n')}
`, { file: join(dir, 'gateway.yaml'), env: { REDIS_URL: redis.url, REDIS_PASSWORD: 'alice-secret-9', WRONG_PASSWORD: 'not-her-password-3' } })
  t.teardown(() => gw.close())
  const admin = gw.adminUrl as string
  const stores = async () => ((await (await request(`${admin}/stores`)).body.json()) as { stores: StoreSnapshot[] }).stores
  const store = async (name: string) => (await stores()).find(s => s.name === name)
  const hit = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    await res.body.text()
    return { status: res.statusCode, count: res.headers['x-count'], error: res.headers['x-store-error'], ms: Number(res.headers['x-store-ms']) }
  }
  const metrics = async () => await (await request(`${admin}/metrics`)).body.text()
  const metric = (text: string, line: string) => Number(new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)

  await t.test('the gateway starts and serves while a store\'s Redis is down; it comes up without a reload', async t => {
    const r = await hit('/late')
    t.equal(r.status, 200, 'served: the plugin fails open')
    t.equal(r.count, undefined)
    t.match(r.error, /not connected|Connection is closed|ECONNREFUSED/i, 'the store call failed at once')
    t.match(await store('late'), { type: 'redis', state: 'down', lastError: /ECONNREFUSED/ })
    t.equal((await hit('/local')).count, '1', 'the memory store works meanwhile')
    await late.restart()
    t.ok(await waitUp('late', 10_000), 'up once the server is there (reconnect backoff at most 2 s)')
    t.equal((await hit('/late')).count, '1')
  })

  async function waitUp (name: string, maxMs: number, state = 'up'): Promise<boolean> {
    for (const start = performance.now(); performance.now() - start < maxMs;) {
      if ((await store(name))?.state === state) return true
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    return false
  }

  await t.test('username and password: they work, and the password shows nowhere', async t => {
    t.equal((await hit('/secured')).count, '1')
    t.equal((await hit('/secured')).count, '2')
    t.match(await store('wrong'), { state: 'down', lastError: /WRONGPASS/ }, 'a wrong password: down, with the reason')
    t.match((await hit('/wrong')).error, /./)
    const config = (await (await request(`${admin}/config`)).body.json()) as { config: { stores: Record<string, { password: string, username: string }> } }
    t.equal(config.config.stores.secured?.password, '[redacted]')
    t.equal(config.config.stores.secured?.username, 'alice')
    const everything = JSON.stringify(config) + JSON.stringify(await stores()) + JSON.stringify(gw.logs) + await metrics()
    t.notOk(everything.includes('alice-secret-9'), 'not in GET /config, GET /stores, the logs or /metrics')
    t.notOk(everything.includes('not-her-password-3'), 'nor the wrong one')
    t.ok(gw.logs.some(l => l.store === 'wrong' && l.msg?.toString().startsWith('store is down')), 'the failure was logged')
  })

  await t.test('Redis killed: down within a second, calls fail fast, up again after a restart without a reload', async t => {
    t.equal((await hit('/shared')).count, '1')
    let text = await metrics()
    t.equal(metric(text, 'portcullis_store_up{store="shared"}'), 1)
    t.equal(metric(text, 'portcullis_store_up{store="memory"}'), 1)
    const errorsBefore = metric(text, 'portcullis_store_errors_total{store="shared"}') || 0
    t.ok(metric(text, 'portcullis_store_command_duration_seconds_count{store="shared"}') >= 1, 'command durations are recorded')

    await redis.kill()
    t.ok(await waitUp('shared', 1_000, 'down'), 'GET /stores says down within a second')
    const results = await Promise.all(Array.from({ length: 50 }, () => hit('/shared')))
    t.same(new Set(results.map(r => r.status)), new Set([200]), 'every request served')
    t.equal(results.filter(r => r.error !== undefined).length, 50, 'every store call failed')
    const slowest = Math.max(...results.map(r => r.ms))
    t.ok(slowest < 1_000, `the slowest failed store call took ${Math.round(slowest)} ms (commandTimeout 2 s): none waited for a reconnect`)
    text = await metrics()
    t.equal(metric(text, 'portcullis_store_up{store="shared"}'), 0)
    t.equal(metric(text, 'portcullis_store_errors_total{store="shared"}') - errorsBefore, 50, 'each failure counted')
    t.match(await store('shared'), { state: 'down', lastError: /./ })

    await redis.restart()
    t.ok(await waitUp('shared', 10_000), 'up again, without a reload')
    t.equal((await hit('/shared')).count, '1', 'a new server (no persistence): the script is loaded again and counts from 1')
    t.equal(metric(await metrics(), 'portcullis_store_up{store="shared"}'), 1)
  })
})
