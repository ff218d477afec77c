import t from 'tap'
import { request } from 'undici'
import { namedUpstream, waitFor } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

// GET /stores in worker mode asks every worker: a hung one (here stopped) cannot answer, and must not
// pass for one with no stores, nor for one that sees every store up.
t.test('workers: GET /stores names the workers that did not answer; 504 when none did', async t => {
  const a = await namedUpstream('a')
  t.teardown(() => a.close())
  const { workers, admin } = await startCluster(t, `  a: { targets: [ { url: "${a.url}" } ] }`, '  - { name: r, match: { path: /r }, upstream: a }',
    { env: { PORTCULLIS_WORKER_QUERY_TIMEOUT_MS: '1000' } })
  const [first, second] = workers as [number, number]
  // A stopped worker must not outlive the test (the primary's SIGTERM could not reach it).
  const resume = () => { for (const pid of workers) try { process.kill(pid, 'SIGCONT') } catch { /* exited */ } }
  t.teardown(resume)
  const stores = async () => {
    const res = await request(`${admin}/stores`)
    return { status: res.statusCode, body: await res.body.json() as { stores?: Array<{ name: string }>, missing?: number[], error?: string } }
  }
  t.match(await stores(), { status: 200, body: { stores: [{ name: 'memory' }] } })
  t.notOk((await stores()).body.missing, 'every worker answered: none missing')

  process.kill(first, 'SIGSTOP')
  const one = await stores()
  t.match(one, { status: 200, body: { stores: [{ name: 'memory' }] } }, 'the other worker\'s view')
  t.same(one.body.missing, [first], 'the stopped worker is named')

  process.kill(second, 'SIGSTOP')
  const none = await stores()
  t.match(none, { status: 504, body: { error: 'workers_missing', message: /did not answer in time/ } }, 'no worker answered: not an empty list')
  t.same(none.body.missing?.sort(), [first, second].sort())

  resume()
  t.ok(await waitFor(async () => { const s = await stores(); return s.status === 200 && s.body.missing === undefined ? true : undefined }, 10_000), 'both answer again')
})
