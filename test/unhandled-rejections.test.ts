import t from 'tap'
import { ScriptBatches } from '../src/stores/script-batches.ts'
import { Upstream } from '../src/upstreams/upstream.ts'
import type { Runtime } from '../src/runtime/runtime.ts'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'
import { catchAllYaml } from './helpers/catch-all.ts'
import { waitForLog } from './helpers/logs.ts'

// Promises nothing awaited that could reject: an unhandled rejection ends the process (tap fails the file).

t.test('a store script batch answered with other than one result per call fails its calls, not the process', async t => {
  for (const reply of [null, 'OK', ['only one']]) {
    const batches = new ScriptBatches(async () => reply, false)
    const settled = await Promise.allSettled([batches.call(['a'], [1]), batches.call(['b'], [2])])
    t.same(settled.map(s => s.status), ['rejected', 'rejected'], `reply ${JSON.stringify(reply)}`)
    t.match((settled[0] as PromiseRejectedResult).reason, { message: /^the batched store script replied / })
  }
})

t.test('targets removed after the pools were destroyed (discovery at the shutdown deadline): no unhandled rejection', async t => {
  const upstream = new Upstream('up', { targets: [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }] })
  await upstream.destroy()
  upstream.setTargets(1, [])
  t.same(upstream.targets.map(x => x.url), ['http://127.0.0.1:1'])
  // The pool's close() rejects a microtask later: a turn for it to be handled, or not.
  await new Promise(resolve => setImmediate(resolve))
})

t.test('a replaced config that fails to release is logged, not an unhandled rejection', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(catchAllYaml(up.url))
  t.teardown(() => gw.close())
  const previous = gw.gateway.runtime as Runtime & { dispose: () => Promise<void> }
  previous.dispose = () => Promise.reject(new Error('cannot release'))
  await gw.apply(gw.loaded)
  t.not(gw.gateway.runtime, previous, 'the new config is in service')
  t.match(await waitForLog(gw.logs, { msg: 'the config a reload replaced could not be released' }), { level: 50, err: { message: 'cannot release' } })
})
