import t from 'tap'
import { request } from 'undici'
import { until } from '../helpers/wait.ts'
import { configFile, holdingUpstream, startFromFile, type Load, type TargetView } from './helpers.ts'

// Each config has its own pools and queues: after a reload, requests in flight on the old one keep
// its connections until they end. GET /upstreams and the upstream gauges must show that load.


const ZERO: Load = { inFlight: 0, queued: 0, connections: { open: 0, busy: 0 } }

t.test('requests held on a retired config show in GET /upstreams and the upstream gauges until they end', async t => {
  const { up, held, release } = await holdingUpstream()
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  api:
    targets: [ { url: "${up.url}" } ]
    connections: 2
routes:
  - { name: api-${n}, match: { path: /api }, upstream: api }
`
  const cf = await configFile(yaml(0))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => {
    release()
    await gw.close()
    await Promise.all([up.close(), cf.remove()])
  })
  const target = async (): Promise<TargetView | undefined> => {
    const body = await (await request(`${gw.adminUrl}/upstreams`)).body.json() as { upstreams: Array<{ name: string, targets: TargetView[] }> }
    return body.upstreams.find(u => u.name === 'api')?.targets[0]
  }
  const gauge = async (name: string): Promise<number | undefined> => {
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
    const line = text.split('\n').find(l => l.startsWith(`${name}{upstream="api",target="${up.url}"}`))
    return line === undefined ? undefined : Number(line.split(' ').at(-1))
  }
  const get = () => request(`${gw.url}/api`).then(async r => `${r.statusCode} ${await r.body.text()}`)

  // Two at the upstream, two waiting in the gateway for one of its 2 connections.
  const old = [get(), get(), get(), get()]
  t.ok(await until(() => held() === 2 && gw.gateway.runtime.upstreams.get('api')?.targets[0]?.waiting.length === 2), 'two sent, two queued')

  await cf.write(yaml(1))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  // The new config's pool has connections of its own: two more reach the upstream.
  const next = [get(), get()]
  t.ok(await until(() => held() === 4), 'two more sent on the new config')

  t.match(await target(), {
    url: up.url,
    inFlight: 4,
    queued: 2,
    connections: { open: 4, busy: 4 },
    retired: { inFlight: 2, queued: 2, connections: { open: 2, busy: 2 } }
  }, 'GET /upstreams counts what the retired config holds, and says how much of it that is')
  t.equal(await gauge('portcullis_upstream_connections_in_use'), 4, 'connections in use: both configs\'')
  t.equal(await gauge('portcullis_upstream_queue_length'), 2, 'queue length: the retired config\'s')

  release()
  t.same(await Promise.all([...old, ...next]), Array(6).fill('200 done'), 'every request completes')
  t.ok(await until(() => gw.gateway.retiring.length === 0), 'the retired config drained')
  const after = await target()
  t.match(after, { inFlight: 0, queued: 0, connections: { busy: 0 } }, 'nothing in flight once they end')
  t.same(after?.retired, ZERO, 'nothing held by the retired config')
  t.equal(await gauge('portcullis_upstream_connections_in_use'), 0)
  t.equal(await gauge('portcullis_upstream_queue_length'), 0)
})
