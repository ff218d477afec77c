import type { ServerResponse } from 'node:http'
import { setTimeout } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { writeUserPlugin } from '../../test/helpers/user-plugin.ts'
import { until } from '../../test/helpers/wait.ts'
import { startCluster } from '../../test/workers/helpers.ts'

// With server.workers and a Redis store, a write one worker takes deletes the URL from Redis for
// every worker; a fetch another worker had begun before it (the content from before the write)
// must not be stored after that deletion, where every later read would get it until it expired.

t.setTimeout(300_000)

/** Two workers on one Redis store, a kept-alive connection to each; a GET with x-hold waits for `release`. */
async function workersOnRedis (t: Test) {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const state = { version: 1, held: undefined as (() => void) | undefined }
  const up = await startUpstream((req, res: ServerResponse) => {
    req.resume()
    if (req.method === 'POST') { state.version++; res.writeHead(200).end('ok'); return }
    // The content as the request arrives: what a GET held meanwhile brings is from before the write.
    const body = `v${state.version}`
    const answer = () => res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': body.length }).end(body)
    if (req.headers['x-hold'] === undefined) answer(); else state.held = answer
  })
  t.teardown(() => up.close())
  const pid = writeUserPlugin(t.testdir({}), 'pid', 900, '{ onResponse: (res: any) => { res.headers[\'x-pid\'] = String(process.pid) } }')
  const c = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`,
    '  - { name: r, match: { path: /r/* }, upstream: u, plugins: { cache: { store: shared }, pid: {} } }',
    { loadPlugins: [pid], extra: `stores:\n  shared: { type: redis, url: "${redis.url}", keyPrefix: "wrw:" }\n` })
  t.ok(await storeUp(c.admin), 'the Redis store is up')

  // A kept-alive connection to each worker (the cluster hands connections out in turn).
  const byPid = new Map<string, Client>()
  for (let i = 0; i < 20 && byPid.size < 2; i++) {
    const client = new Client(c.url, { pipelining: 1 })
    const res = await client.request({ path: '/r/0', method: 'GET' })
    await res.body.text()
    const p = String(res.headers['x-pid'])
    if (byPid.has(p)) await client.close(); else byPid.set(p, client)
  }
  t.teardown(() => Promise.all([...byPid.values()].map(client => client.close())))
  const [a, b] = [...byPid.values()]
  if (a === undefined || b === undefined) throw new Error('no connection to the second worker')
  const get = async (client: Client, headers: Record<string, string> = {}) => {
    const res = await client.request({ path: '/r/2', method: 'GET', headers })
    return { pid: String(res.headers['x-pid']), body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }
  }
  const write = async () => {
    const res = await a.request({ path: '/r/2', method: 'POST', body: 'x' })
    await res.body.text()
    t.same([res.statusCode, state.version], [200, 2], 'the first worker took the write')
  }
  return { c, a, b, get, write, state }
}

t.test('workers on Redis: a fetch on one worker begun before a write on another is not stored', async t => {
  const { a, b, get, write, state } = await workersOnRedis(t)
  const before = get(b, { 'x-hold': '1' })
  t.ok(await until(() => state.held !== undefined), 'a GET on the second worker is upstream')
  await write()
  state.held?.()
  const answer = await before
  t.same([answer.body, answer.cacheStatus], ['v1', 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged'], 'answered with what it fetched, not stored')
  for (const client of [a, b]) {
    const after = await get(client)
    t.equal(after.body, 'v2', `a read on worker ${after.pid} gets the content after the write (${after.cacheStatus})`)
  }
})

t.test('workers on Redis: a fetch that stored the old answer before the write reached its worker is deleted then', async t => {
  const { c, a, b, get, write, state } = await workersOnRedis(t)
  const before = get(b, { 'x-hold': '1' })
  t.ok(await until(() => state.held !== undefined), 'a GET on the second worker is upstream')
  // The primary stopped (a GC pause, a starved core): the write's word reaches the other worker late.
  const primary = Number(c.primary.pid)
  process.kill(primary, 'SIGSTOP')
  try {
    await write()
    state.held?.()
    t.match((await before).cacheStatus, /stored/, 'the second worker stored what it fetched before the write')
  } finally {
    process.kill(primary, 'SIGCONT')
  }
  const deadline = performance.now() + 10_000
  let reads: string[] = []
  while (performance.now() < deadline) {
    reads = [(await get(a)).body, (await get(b)).body]
    if (reads.every(r => r === 'v2')) break
    await setTimeout(50)
  }
  t.same(reads, ['v2', 'v2'], 'once the word came, both workers read the content after the write')
})

t.test('workers on Redis: a read on the worker that took a write, before the others are told, gets what came after it', async t => {
  const { c, a, b, get, write, state } = await workersOnRedis(t)
  const before = get(b, { 'x-hold': '1' })
  t.ok(await until(() => state.held !== undefined), 'a GET on the second worker is upstream, holding the URL\'s fetch lock')
  const primary = Number(c.primary.pid)
  process.kill(primary, 'SIGSTOP')
  try {
    await write()
    // Sent after the write was answered, while the other worker's fetch (begun before it) holds the lock.
    const joining = get(a)
    await setTimeout(300)
    state.held?.()
    t.match((await before).cacheStatus, /stored/, 'the second worker stored what it fetched before the write')
    const first = await joining
    t.equal(first.body, 'v2', `the writer's read during the other's fetch gets the content after the write (${first.cacheStatus})`)
    const next = await get(a)
    t.equal(next.body, 'v2', `so does its read once the old answer was stored (${next.cacheStatus})`)
  } finally {
    process.kill(primary, 'SIGCONT')
  }
})
