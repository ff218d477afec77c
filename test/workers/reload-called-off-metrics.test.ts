import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, namedUpstream, waitFor } from '../reload/helpers.ts'

// A reload called off (one worker failed to build it) leaves no metrics series of what only it had:
// the worker that built it had started the series of its new upstream, at 0.

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))
const CALLED_OFF = 'config called off by the primary (not every worker could build it, or the gateway stops): released unused'

t.test('workers: a reload called off leaves no series of the upstream it added', async t => {
  const [u, x] = await Promise.all([namedUpstream('u'), namedUpstream('x')])
  t.teardown(() => Promise.all([u.close(), x.close()]))
  const closed = join(t.testdir({}), 'closed')
  writeFileSync(closed, '')
  /** Upstream u and route r; `more`: upstream x, its route, and a route whose setup fails on worker 1. */
  const yaml = (more: boolean) => `loadPlugins: [ ${JSON.stringify(TRAP)} ]
server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "${u.url}" } ] }
${more ? `  x: { targets: [ { url: "${x.url}" } ] }` : ''}
routes:
  - { name: r, match: { path: /r }, upstream: u }
${more ? `  - { name: rx, match: { path: /x }, upstream: x }
  - { name: trap, match: { path: /trap }, upstream: u, plugins: { trap: { file: "${closed}", worker: 1, fail: true } } }` : ''}
`
  const cf = await configFile(yaml(false))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  t.ok(primary, 'started')
  const admin = String(primary?.admin)
  const workers = primary?.workers as number[]
  const metrics = async () => await (await request(`${admin}/metrics`)).body.text()
  t.match(await metrics(), /^portcullis_upstream_ejections_total\{upstream="u",/m)

  await cf.write(yaml(true))
  t.match(await (await request(`${admin}/config/reload`, { method: 'POST' })).body.json(), { result: 'failed', message: /the trap is closed/ })
  t.ok(await cli.waitForLine(l => l.msg === CALLED_OFF && l.pid === workers[0], 10_000), 'worker 0 had built it, and released it')
  t.ok(await waitFor(async () => /upstream="x"/.test(await metrics()) ? undefined : true, 5_000), 'no series of upstream x')
  t.match(await metrics(), /^portcullis_upstream_ejections_total\{upstream="u",/m, 'those of u kept')
})
