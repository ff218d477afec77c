import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startCluster } from './helpers.ts'

const PROBE = fileURLToPath(new URL('../helpers/probe-plugin.ts', import.meta.url))
const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))

t.test('workers: a plugin admin call names as missing the workers it asked that did not answer, not those still starting', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`,
    `  - { name: a, match: { path: /a }, upstream: u, plugins: { probe: {}, trap: { file: "${hold}" } } }`,
    { loadPlugins: [PROBE, TRAP], env: { PORTCULLIS_WORKER_QUERY_TIMEOUT_MS: '1000' } })
  const [stopped, restarted] = workers as [number, number]
  t.teardown(() => { try { process.kill(stopped, 'SIGCONT') } catch { /* exited */ } })

  // Worker 1's replacement stays in its plugin setup (serving nothing, not asked); worker 0 cannot answer.
  writeFileSync(hold, '')
  process.kill(restarted, 'SIGKILL')
  const starting = await cli.waitForLine(l => l.msg === 'held setup begins' && !workers.includes(l.pid as number), 30_000)
  t.ok(starting, 'worker 1\'s replacement is starting')
  process.kill(stopped, 'SIGSTOP')

  const res = await request(`${admin}/plugins/probe/echo`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 504)
  const body = await res.body.json() as { missing: number[], message: string }
  t.same(body.missing, [stopped], 'the one asked')
  t.equal(body.message, `worker(s) ${stopped} did not answer in time: the call may not have run there yet`)
  process.kill(stopped, 'SIGCONT')
  rmSync(hold)
})
