import t from 'tap'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const FAILED = 'config reload failed while building the new runtime; the active config keeps serving'

// A build that always fails (a plugin whose service never comes up) was tried every 60 s for ever:
// an error line and a failed count each time, and in workers mode workers switched back and forth.
t.test('a save whose build keeps failing is tried four more times, then not until the file is saved again', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: api, match: { path: /api }, upstream: a }'))
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  writeUserPlugin(cf.dir, 'never', 500, '(async () => { throw new Error(\'the service never comes up\') })()')
  const save = (route: string) => cf.write(gatewayYaml({ a: [a.url] }, `  - { name: ${route}, match: { path: /${route} }, upstream: a, plugins: { never: {} } }`, 'loadPlugins: [ ./never.ts ]'))
  await save('next')

  const last = await waitForLog(gw.logs, { msg: `${FAILED}; not tried again until the file is saved again` }, 40_000)
  t.match(last, { trigger: 'file', retries: 4 })
  const failures = gw.logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith(FAILED))
  t.same(failures.map(l => l.retryMs), [1000, 2000, 4000, 8000, undefined], 'backing off, then given up')

  // A new save is tried again, from the first wait.
  await save('again')
  t.ok(await until(() => gw.logs.filter(l => l.msg === FAILED).length === 5, 10_000), 'tried again')
  t.match(gw.logs.filter(l => l.msg === FAILED)[4], { retryMs: 1000 })
})
