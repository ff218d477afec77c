import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from '../reload/helpers.ts'
import { fresh, goodAndFlaky, startCluster } from './helpers.ts'

t.test('workers: a verdict broadcast while a worker was starting still reaches it', async t => {
  // A plugin whose setup lasts while a file exists: a restarted worker has its config but does not serve yet.
  const dir = t.testdir({})
  const index = new URL('../../src/index.ts', import.meta.url).href
  const plugin = join(dir, 'slow-setup.ts')
  const hold = join(dir, 'hold')
  writeFileSync(plugin, `
import { existsSync } from 'node:fs'
import { definePlugin, Type } from ${JSON.stringify(index)}
export default definePlugin({
  name: 'slow-setup', priority: 10, schema: Type.Object({}),
  async setup (_config, { log }) {
    log.info('slow setup begins')
    while (existsSync(${JSON.stringify(hold)})) await new Promise(resolve => setTimeout(resolve, 20))
    return {}
  }
})
`)
  const { good, flaky, sickens } = await goodAndFlaky(t)
  const { cli, primary, workers, url } = await startCluster(t, `  pool:
    targets: [ { url: "${good.url}" }, { url: "${flaky.url}" } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 }`,
  `  - { name: api, match: { path: /api }, upstream: pool, plugins: { slow-setup: {} } }`, { loadPlugins: [plugin] })

  writeFileSync(hold, '')
  process.kill(workers[0] as number, 'SIGKILL')
  const starting = await cli.waitForLine(l => l.msg === 'slow setup begins' && !workers.includes(l.pid as number), 30_000)
  t.ok(starting, 'the replacement has its config and is setting up')
  // Now, while it cannot hear the broadcast, the target turns sick; once the verdict is out, the setup ends.
  sickens()
  t.ok(await cli.waitForLine(l => l.msg === 'target unhealthy' && l.pid === primary.pid, 10_000), 'the primary broadcast the verdict')
  rmSync(hold)
  t.ok(await cli.waitForLine(l => l.msg === 'target unhealthy' && l.pid === starting?.pid, 10_000),
    'the replacement learns the verdict anyway (the primary sends the whole state again)')
  await waitFor(() => cli.lines.some(l => l.msg === 'worker serving' && l.workerPid === starting?.pid) ? true : undefined, 10_000)
  t.same(new Set(await fresh(`${url}/api`, 20)), new Set(['200 good']), 'no worker sends to the sick target')
})
