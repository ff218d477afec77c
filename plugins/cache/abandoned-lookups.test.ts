import { connect, type Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { numberingUpstream, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { sharedWithPlugins, writeUserPlugin } from '../../test/helpers/user-plugin.ts'
import { until } from '../../test/helpers/wait.ts'

// A client that leaves while its lookup reads Redis: once the read is answered, nothing of its
// request stays in the route's fetches under way (each purge would walk it, and it would hold its
// key and stale entry for good).

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const CLIENTS = 500

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

t.test(`${CLIENTS} clients that reset while their lookups wait for Redis: no lookup is kept once Redis answers`, async t => {
  // The cache's lookup objects (req.locals.cache), weakly: one still reachable after a full GC is
  // held by the route cache, the only thing left that could hold it.
  const seen = sharedWithPlugins('abandoned', { started: 0, lookups: [] as Array<WeakRef<object>> })
  // Before the cache (priority 500), synchronous: the cache's lookup begins in the same turn.
  const plugin = writeUserPlugin(t.testdir({}), 'lookups', 1000, `{
    onRequest: () => { shared('abandoned').started++ },
    onFinished: (req: any) => { if (typeof req.locals.cache === 'object') shared('abandoned').lookups.push(new WeakRef(req.locals.cache)) }
  }`)
  const up = await numberingUpstream()
  t.teardown(() => up.close())
  // commandTimeout past the freeze, however long a loaded machine takes: the reads are answered, not
  // timed out (pluginTimeout raised to fit it). A lead a client that left kept would hold its key's
  // next request for collapseTimeout.
  const config = sharedStoreConfig(redis.url, up.url, 'abandoned:', '{ cache: { store: shared, collapseTimeout: 6s }, lookups: {} }').replace('commandTimeout: 2s', 'commandTimeout: 30s')
  const gw = await startGateway(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n  pluginTimeout: 120s\n${config}loadPlugins: [ "${plugin}" ]\n`)
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))

  // Redis answers no one until the test resumes it: no time budget for what follows.
  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let stopped = true
  const resume = () => { if (stopped) { stopped = false; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)

  const sockets: Socket[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const s = connect(gw.ports.listen, '127.0.0.1', () => s.write(`GET /p${i} HTTP/1.1\r\nHost: example.test\r\n\r\n`))
    s.on('error', () => {})
    sockets.push(s)
  }
  t.ok(await until(() => seen.started === CLIENTS, 30_000), 'every lookup is reading Redis')
  for (const s of sockets) s.resetAndDestroy()
  t.ok(await until(() => seen.lookups.length === CLIENTS, 30_000), 'every exchange is over')
  const abandoned = seen.lookups.slice()

  resume()
  // Answered after the lookups' reads on the gateway's connection to Redis: those are in by then.
  const after = await request(`${gw.url}/after`)
  t.equal(await after.body.text(), '/after #1')
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0))
  gc()
  t.equal(abandoned.filter(l => l.deref() !== undefined).length, 0, 'no lookup of a client that left is kept')
  t.equal(up.requests(), 1, 'none went upstream')
  const start = performance.now()
  const again = await request(`${gw.url}/p0`, { headers: { host: 'example.test' } })
  t.equal(await again.body.text(), '/p0 #2')
  t.ok(performance.now() - start < 3_000, 'a request for the key of one that left waits for no fetch of its')
})
