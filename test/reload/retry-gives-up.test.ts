import t from 'tap'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
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

// An admin reload joining the queued retry of a failed build took it over, and its failure was not
// retried: the series stopped there, with no more tries and no line saying so.
t.test('an admin reload that joins a queued retry fails: the retry series goes on', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: api, match: { path: /api }, upstream: a }'))
  // Not watching: the retries are the reloader's own, the only file triggers.
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  // Each setup waits for `closed` (when set), then throws.
  const gate = sharedWithPlugins('retry-gate', { closed: undefined as Promise<void> | undefined, entered: 0 })
  writeUserPlugin(cf.dir, 'gated', 500, `(async () => {
    const gate = shared('retry-gate')
    gate.entered++
    await gate.closed
    throw new Error('the service is not up yet')
  })()`)
  await cf.write(gatewayYaml({ a: [a.url] }, '  - { name: next, match: { path: /next }, upstream: a, plugins: { gated: {} } }', 'loadPlugins: [ ./gated.ts ]'))
  const { reloader } = gw
  const asked: string[] = []
  const reload = reloader.reload.bind(reloader)
  reloader.reload = trigger => { asked.push(trigger); return reload(trigger) }

  t.match(await reloader.reload('file'), { result: 'failed' })
  t.match(await waitForLog(gw.logs, { msg: FAILED }), { trigger: 'file', retryMs: 1000 })
  let open = () => {}
  gate.closed = new Promise(resolve => { open = resolve })
  const first = reloader.reload('admin')
  t.ok(await until(() => gate.entered === 2), 'an admin reload builds')
  t.ok(await until(() => asked.at(-1) === 'file'), 'the retry is due meanwhile: queued behind it')
  const joined = reloader.reload('admin')
  open()
  t.match(await first, { trigger: 'admin', result: 'failed' })
  t.match(await joined, { trigger: 'admin', result: 'failed' })
  const failures = () => gw.logs.filter(l => l.msg === FAILED)
  t.match(failures()[2], { trigger: 'admin', retryMs: 2000 }, 'the admin reload that joined the retry says when the next try is')
  t.ok(await until(() => failures().length === 4, 10_000), 'tried again')
  t.match(failures()[3], { trigger: 'file', retryMs: 4000 }, 'the series goes on')
})
