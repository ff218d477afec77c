import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { namedUpstream } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))

// A worker restarted while a sibling that asked for port 0 served was told 0 too, to share it; that
// sibling exiting before it bound left it on a port node:cluster opened anew, which no one knew.
t.test('workers: with port 0, a worker whose sibling exits while it starts still serves on the gateway\'s port', async t => {
  const a = await namedUpstream('a')
  t.teardown(() => a.close())
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, url, admin } = await startCluster(t, `  a: { targets: [ { url: "${a.url}" } ] }`,
    `  - { name: r, match: { path: /r }, upstream: a, plugins: { trap: { file: "${hold}" } } }`, { loadPlugins: [TRAP] })
  const [first, second] = workers as [number, number]

  // Restarts hold in their plugin setup until `hold` goes.
  writeFileSync(hold, '')
  const since = cli.lines.length
  process.kill(first, 'SIGKILL')
  t.ok(await cli.waitForLine(l => l.msg === 'held setup begins' && !workers.includes(l.pid as number), 30_000), 'worker 0\'s replacement is starting')
  process.kill(second, 'SIGKILL')
  t.ok(await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === second, 10_000), 'worker 1 is gone too')
  rmSync(hold)

  const serving = await Promise.all([0, 1].map(index => cli.waitForLine(l => l.msg === 'worker serving' && l.worker === index && cli.lines.indexOf(l) >= since && l.url === url, 60_000)))
  t.ok(serving.every(l => l !== undefined), `both slots serve on ${url} (stderr: ${cli.stderr()})`)
  t.same(cli.lines.slice(since).filter(l => l.msg === 'worker serving' && l.url !== url).map(l => l.url), [], 'no worker was left serving on another port')
  t.same(new Set(await fresh(`${url}/r`, 4)), new Set(['200 a']), 'the announced URL serves')
  t.equal((await request(`${admin}/readyz`)).statusCode, 200)
})
