import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from 'undici'
import { numberingUpstream } from '../helpers/shared-cache-store.ts'
import { waitFor } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

// A reload called off (one worker failed to build it) leaves every worker's memory cache as it was:
// the worker that had built it drops nothing, neither then nor at the next reload.

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))
const CALLED_OFF = 'config called off by the primary (not every worker could build it, or the gateway stops): released unused'
const DROPPED = /^cache entries from an earlier config/

/** `n` GETs of `url`, each on a connection of its own (the workers take them in turn): whether every one was a hit. */
async function allHits (url: string, n: number): Promise<boolean> {
  let hits = 0
  for (let i = 0; i < n; i++) {
    const client = new Client(new URL(url).origin)
    try {
      const res = await client.request({ path: new URL(url).pathname, method: 'GET' })
      await res.body.text()
      if (String(res.headers['cache-status']).startsWith('Portcullis; hit')) hits++
    } finally {
      await client.close()
    }
  }
  return hits === n
}

/** Route r cached with `cache`; `trap`: a route after it whose setup fails on worker 1. */
const routes = (cache: string, trap?: string) => `  - { name: r, match: { path: /r/* }, upstream: u, plugins: { cache: ${cache} } }
${trap === undefined ? '' : `  - { name: trap, match: { path: /trap }, upstream: u, plugins: { trap: { file: "${trap}", worker: 1, fail: true } } }`}`

/** A two-worker cluster whose workers both hold /r/1 in their memory cache. */
async function cached (t: Test, cache: string) {
  const up = await numberingUpstream()
  t.teardown(() => up.close())
  const cluster = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, routes(cache), { loadPlugins: [TRAP] })
  const url = `${cluster.url}/r/1`
  t.ok(await waitFor(async () => await allHits(url, 4) ? true : undefined, 10_000), 'both workers hold /r/1')
  const closed = join(t.testdir({}), 'closed')
  writeFileSync(closed, '')
  return { ...cluster, url, closed }
}

t.test('workers: a reload called off leaves the cache; the next reload, the route unchanged, drops nothing', async t => {
  const { cli, workers, url, reload, closed } = await cached(t, '{}')
  const since = cli.lines.length
  t.match(await reload(routes('{}', closed)), { result: 'failed', message: /the trap is closed/ })
  t.ok(await cli.waitForLine(l => l.msg === CALLED_OFF && l.pid === workers[0], 10_000), 'worker 0 had built it, and released it')
  t.match(await reload(routes('{ methods: [GET, HEAD] }')), { result: 'success' })
  t.ok(await allHits(url, 4), 'still hits on both workers')
  t.same(cli.lines.slice(since).filter(l => DROPPED.test(String(l.msg))), [], 'nothing dropped')
})

t.test('workers: a reload called off that changes the route\'s key settings drops nothing', async t => {
  const { cli, workers, url, reload, closed } = await cached(t, '{}')
  const since = cli.lines.length
  t.match(await reload(routes('{ key: { query: { ignore: [utm] } } }', closed)), { result: 'failed', message: /the trap is closed/ })
  t.ok(await cli.waitForLine(l => l.msg === CALLED_OFF && l.pid === workers[0], 10_000), 'worker 0 had built it, and released it')
  t.ok(await allHits(url, 4), 'still hits on both workers')
  t.same(cli.lines.slice(since).filter(l => DROPPED.test(String(l.msg))), [], 'nothing dropped')
})
