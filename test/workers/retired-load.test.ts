import t from 'tap'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { until } from '../helpers/wait.ts'
import { configFile, holdingUpstream, waitFor, type TargetView } from '../reload/helpers.ts'


// Each worker sends what its retired configs still hold; the primary sums it over the workers.
t.test('workers: requests held on a retired config show in GET /upstreams and the gauges, summed over the workers', async t => {
  const { up, held, release } = await holdingUpstream()
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
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
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => {
    release()
    await stopCli(cli)
    await Promise.all([up.close(), cf.remove()])
  })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const url = String(primary.url)
  const admin = String(primary.admin)
  const target = async (): Promise<TargetView | undefined> => {
    const body = await (await request(`${admin}/upstreams`)).body.json() as { upstreams: Array<{ name: string, targets: TargetView[] }> }
    return body.upstreams.find(u => u.name === 'api')?.targets[0]
  }
  const inUse = async (): Promise<number | undefined> => {
    const text = await (await request(`${admin}/metrics`)).body.text()
    const line = text.split('\n').find(l => l.startsWith(`portcullis_upstream_connections_in_use{upstream="api",target="${up.url}"}`))
    return line === undefined ? undefined : Number(line.split(' ').at(-1))
  }
  const get = () => request(`${url}/api`).then(async r => `${r.statusCode} ${await r.body.text()}`)

  // Two at the upstream (no worker has more than its 2 connections' worth, wherever they land).
  const old = [get(), get()]
  t.ok(await until(() => held() === 2, 10_000), 'two sent on the first config')
  await cf.write(yaml(1))
  t.match(await (await request(`${admin}/config/reload`, { method: 'POST' })).body.json(), { result: 'success' })
  const next = [get(), get()]
  t.ok(await until(() => held() === 4, 10_000), 'two more sent on the new config')

  // Workers answer with the config they serve: poll until both are on the new one.
  const seen = await waitFor(async () => { const x = await target(); return x?.inFlight === 4 ? x : undefined }, 10_000)
  t.match(seen, { inFlight: 4, queued: 0, connections: { busy: 4 }, retired: { inFlight: 2, queued: 0, connections: { busy: 2 } } },
    'GET /upstreams: both configs\' requests, and the retired config\'s share')
  t.equal(await inUse(), 4, 'portcullis_upstream_connections_in_use: both configs\' connections')

  release()
  t.same(await Promise.all([...old, ...next]), Array(4).fill('200 done'), 'every request completes')
  const after = await waitFor(async () => { const x = await target(); return x?.retired.connections.open === 0 ? x : undefined }, 10_000)
  t.match(after, { inFlight: 0, connections: { busy: 0 }, retired: { inFlight: 0, queued: 0, connections: { open: 0, busy: 0 } } }, 'released once they end')
  t.equal(await inUse(), 0)
})
