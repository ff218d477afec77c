import t from 'tap'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { fresh, startCluster } from './helpers.ts'

const PROBE = fileURLToPath(new URL('../helpers/probe-plugin.ts', import.meta.url))

t.test('workers: plugin admin endpoints run on every worker, GET /stores merges what each holds', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { workers, url, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`,
    '  - { name: a, match: { path: /a }, upstream: u, plugins: { probe: {} } }', { loadPlugins: [PROBE] })
  t.equal((await fresh(`${url}/a`, 4)).filter(r => r.startsWith('200 ')).length, 4)

  const res = await request(`${admin}/plugins/probe/echo`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 201, 'the workers\' status')
  const body = await res.body.json() as { workers: Array<{ pid: number, status: number, body: unknown }> }
  t.same(body.workers.map(w => w.pid).sort(), [...workers].sort(), 'one answer per worker')
  t.ok(body.workers.every(w => w.status === 201 && JSON.stringify(w.body) === JSON.stringify({ got: { n: 1 }, query: {}, path: '/echo' })))

  const missing = await request(`${admin}/plugins/probe/none`)
  t.equal(missing.statusCode, 404)
  await missing.body.dump()

  const stores = await (await request(`${admin}/stores`)).body.json() as { stores: Array<{ name: string, state: string, entries: number }> }
  t.match(stores.stores, [{ name: 'memory', state: 'up' }])
  t.ok((stores.stores[0]?.entries ?? 0) >= 1, 'entries summed over the workers')
})
