import t from 'tap'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startCluster } from './helpers.ts'

const ADMIN_LOG = fileURLToPath(new URL('./admin-log-plugin.ts', import.meta.url))

t.test('workers: a plugin admin call leaves out a worker that exited before it answered (its memory went with it)', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, workers, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`,
    '  - { name: a, match: { path: /a }, upstream: u, plugins: { admin-log: {} } }', { loadPlugins: [ADMIN_LOG] })
  const [dying, live] = workers as [number, number]

  // The dying worker gets the call but cannot answer it; it is killed once its sibling ran the call (asked at the same time).
  process.kill(dying, 'SIGSTOP')
  const answer = request(`${admin}/plugins/admin-log/call`, { method: 'POST' })
  t.ok(await cli.waitForLine(l => l.msg === 'admin call' && l.pid === live, 10_000), 'the live worker ran the call')
  process.kill(dying, 'SIGKILL')

  const res = await answer
  const body = await res.body.json() as { workers: Array<{ pid: number }>, missing?: number[] }
  t.equal(res.statusCode, 200, JSON.stringify(body))
  t.same(body.workers.map(w => w.pid), [live], 'the worker that ran it')
  t.notOk(body.missing, 'no worker missing')
})
