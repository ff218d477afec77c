import t from 'tap'
import { loadConfig } from '../../src/config/load.ts'
import { Metrics } from '../../src/metrics/metrics.ts'
import { Reloader } from '../../src/reload/reloader.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { configFile, gatewayYaml } from './helpers.ts'

// Workers that may serve another config (one did not answer in time, or could not be put back): the
// file put back to the active config is applied, not found unchanged.
t.test('a file event for the active config\'s text applies it while processes may serve another', async t => {
  const cf = await configFile(gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  - { name: api, match: { path: /api }, upstream: a }'))
  t.teardown(() => cf.remove())
  const active = await loadConfig(cf.file)
  let diverged = false
  const applied: string[] = []
  const reloader = new Reloader({
    file: cf.file,
    log: memoryLogger().log,
    metrics: new Metrics({ defaultMetrics: false }),
    active: () => active,
    diverged: () => diverged,
    apply: async next => { applied.push(next.hash) }
  })
  t.match(await reloader.reload('file'), { result: 'unchanged' }, 'all in step: nothing to do')
  diverged = true
  t.match(await reloader.reload('file'), { result: 'success', hash: active.hash })
  t.same(applied, [active.hash], 'applied')
})
