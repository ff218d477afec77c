import t from 'tap'
import { availableParallelism } from 'node:os'
import { parseConfig } from '../../src/config/load.ts'
import { workerCount } from '../../src/workers/worker-count.ts'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

// Ajv (allErrors, coerceTypes) tries every branch of `number | 'auto'`; the string one turned
// `workers: 3` into "3" in place, so that `workers: 1` started a cluster and a reload adding it was refused.
const withWorkers = (workers: string | undefined) => gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  - { name: r, match: { path: /x }, upstream: a }')
  .replace('  listen: { host: 127.0.0.1, port: 0 }\nadmin', `  listen: { host: 127.0.0.1, port: 0 }\n${workers === undefined ? '' : `  workers: ${workers}\n`}admin`)

t.test('server.workers loads as a number ("auto" as is), also from a ${VAR}', async t => {
  const workers = async (value: string, env: NodeJS.ProcessEnv = {}) => (await parseConfig(withWorkers(value), '/tmp/gateway.yaml', env)).config.server.workers
  t.equal(await workers('3'), 3)
  t.equal(await workers('1'), 1)
  t.equal(await workers('auto'), 'auto')
  t.equal(await workers('"${WORKERS}"', { WORKERS: '2' }), 2)
  t.equal(workerCount(await workers('1')), 1, 'what `portcullis start` compares with 1')
})

t.test('server.workers: 1 is the default: one process, and a reload may add or drop it', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(withWorkers('1'))
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })

  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening', 60_000).finally(() => stopCli(cli))
  t.ok(listening, `started (stderr: ${cli.stderr()})`)
  t.notOk(cli.lines.some(l => l.msg === 'worker started'), 'no worker process')
  t.equal(listening?.pid, cli.child.pid, 'the process started serves itself')

  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  await cf.write(withWorkers(undefined))
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, 'workers: 1 dropped')
  await cf.write(withWorkers('1'))
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, 'workers: 1 added')
  await cf.write(withWorkers('2'))
  t.match(await gw.reloader.reload('admin'), { result: 'invalid', issues: [{ path: 'server.workers', message: /worker count cannot change on reload.*still 1$/ }] })
})

t.test('server.workers: auto is compared as the count it resolves to: a reload between it and that number changes nothing', async t => {
  const cores = availableParallelism()
  const cf = await configFile(withWorkers(String(cores)))
  t.teardown(() => cf.remove())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  await cf.write(withWorkers('auto'))
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, `${cores} to auto, on ${cores} cores`)
  await cf.write(withWorkers(String(cores)))
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, `auto to ${cores}`)
  await cf.write(withWorkers(String(cores + 1)))
  t.match(await gw.reloader.reload('admin'), { result: 'invalid', issues: [{ path: 'server.workers', message: new RegExp(`worker count cannot change on reload.*still ${cores}$`) }] })
})

t.test('server.workers above 4 per CPU is warned of at start (the CPUs the process may run on: one, here)', async t => {
  const cf = await configFile(withWorkers('5'))
  t.teardown(() => cf.remove())
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'], {}, { wrapper: ['taskset', '-c', '0'] })
  // Logged before the workers are forked: stopped then, they end as they start.
  const warned = await cli.waitForLine(l => l.msg?.toString().startsWith('server.workers is more than 4 times the CPUs') === true, 60_000).finally(() => stopCli(cli))
  t.match(warned, { level: 40, workers: 5, cpus: 1 }, `warned (stderr: ${cli.stderr()})`)
})
