import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { waitForLog } from '../helpers/logs.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

t.test('a save whose build failed for a passing reason (a plugin setup) is retried by the watcher, no new save needed', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: api, match: { path: /api }, upstream: a }'))
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  // Its setup fails until the marker exists (a service it needs coming up, say).
  const marker = join(cf.dir, 'ready')
  writeUserPlugin(cf.dir, 'flaky', 500, `(async () => {
    const fs = await import('node:fs')
    if (!fs.existsSync(${JSON.stringify(marker)})) throw new Error('the service is not up yet')
    return {}
  })()`)
  await cf.write(gatewayYaml({ a: [a.url] }, '  - { name: next, match: { path: /next }, upstream: a, plugins: { flaky: {} } }', 'loadPlugins: [ ./flaky.ts ]'))

  const failed = await waitForLog(gw.logs, { msg: 'config reload failed while building the new runtime; the active config keeps serving' })
  t.match(failed, { trigger: 'file', retryMs: 1000 }, 'logged with when it is tried again')
  writeFileSync(marker, '')
  t.match(await waitForLog(gw.logs, { msg: 'config reloaded' }, 10_000), { trigger: 'file' }, 'put in service without an admin call')
  t.equal((await request(`${gw.url}/next`)).statusCode, 200)
  // Tried again at its retry times only (a loaded machine may see the first retry fail before the marker is written).
  const failures = gw.logs.filter(l => l.msg === failed?.msg) as Array<{ time: number, retryMs: number }>
  t.ok(failures.every((l, i) => i === 0 || l.time - (failures[i - 1] as typeof l).time >= (failures[i - 1] as typeof l).retryMs - 50),
    `the other events of the save did not try it again at once: ${JSON.stringify(failures.map(l => [l.time, l.retryMs]))}`)
})
