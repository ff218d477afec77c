import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { fresh, startCluster } from './helpers.ts'

const PROBE = fileURLToPath(new URL('../helpers/probe-plugin.ts', import.meta.url))

t.test('workers: plugin admin endpoints run on every worker, GET /stores merges what each holds', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { workers, url, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`,
    '  - { name: a, match: { path: /a }, upstream: u, plugins: { probe: {} } }', { loadPlugins: [PROBE] })
  t.equal((await fresh(`${url}/a`, 4)).filter(r => r.startsWith('200 ')).length, 4)

  const res = await request(`${admin}/plugins/probe/echo`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 201, 'the workers\' status')
  const body = await res.body.json() as { workers: Array<{ pid: number, status: number, body: unknown }> }
  t.same(body.workers.map(w => w.pid).sort(), [...workers].sort(), 'one answer per worker')
  t.ok(body.workers.every(w => w.status === 201 && JSON.stringify(w.body) === JSON.stringify({ got: { n: 1 }, query: {}, path: '/echo' })))
  t.same(Object.keys(body), ['workers'], 'a success: the workers\' answers alone')

  const missing = await request(`${admin}/plugins/probe/none`)
  t.equal(missing.statusCode, 404)
  await missing.body.dump()

  const stores = await (await request(`${admin}/stores`)).body.json() as { stores: Array<{ name: string, state: string, entries: number }> }
  t.match(stores.stores, [{ name: 'memory', state: 'up' }])
  t.ok((stores.stores[0]?.entries ?? 0) >= 1, 'entries summed over the workers')
})

/** A plugin file (in `dir`) whose setup lasts while `<dir>/hold` exists, with admin endpoints whose replies IPC or HTTP cannot carry as they are. */
function oddAdmin (dir: string): { plugin: string, hold: string } {
  const index = new URL('../../src/index.ts', import.meta.url).href
  const plugin = join(dir, 'odd-admin.ts')
  const hold = join(dir, 'hold')
  writeFileSync(plugin, `
import { existsSync } from 'node:fs'
import { definePlugin, Type } from ${JSON.stringify(index)}
export default definePlugin({
  name: 'odd-admin', priority: 10, schema: Type.Object({}),
  async setup (_config, ctx) {
    if (existsSync(${JSON.stringify(hold)})) ctx.log.info('held setup begins')
    while (existsSync(${JSON.stringify(hold)})) await new Promise(resolve => setTimeout(resolve, 20))
    ctx.shared('admin', () => {
      ctx.admin.route('GET', '/circular', () => {
        const body: Record<string, unknown> = {}
        body.self = body
        return { body }
      })
      ctx.admin.route('GET', '/bigint', () => ({ body: { n: 10n } }))
      ctx.admin.route('GET', '/status', req => ({ status: Number(req.query.status), body: { some: 'body' } }))
    })
    return {}
  }
})
`)
  return { plugin, hold }
}

const ROUTES = '  - { name: a, match: { path: /a }, upstream: u, plugins: { odd-admin: {}, probe: {} } }'

t.test('workers: a plugin admin reply that cannot be sent is each worker\'s 500, and no worker crashes', async t => {
  const { plugin } = oddAdmin(t.testdir({}))
  const { cli, workers, admin } = await startCluster(t, '  u: { targets: [ { url: "http://127.0.0.1:1" } ] }', ROUTES, { loadPlugins: [plugin, PROBE] })
  for (const path of ['/circular', '/bigint', '/status?status=101', '/status?status=600']) {
    const res = await request(`${admin}/plugins/odd-admin${path}`)
    t.equal(res.statusCode, 500, path)
    const body = await res.body.json() as { error?: string, message?: string, workers: Array<{ pid: number, status: number, body: unknown }> }
    t.same(body.workers.map(w => w.pid).sort(), [...workers].sort(), `${path}: every worker answered`)
    t.ok(body.workers.every(w => w.status === 500 && (w.body as { error?: string }).error === 'internal_error'), `${path}: each worker's 500`)
    t.match(body, { error: 'internal_error', message: String }, `${path}: the error at the top, as a single process answers`)
  }
  t.ok(await cli.waitForLine(l => l.msg === 'plugin admin endpoint failed' && String((l.err as { message?: string } | undefined)?.message).includes('GET /plugins/odd-admin/status replied status 101'), 5_000),
    'logged by the worker, naming the endpoint')
  const noContent = await request(`${admin}/plugins/odd-admin/status?status=304`)
  t.same({ status: noContent.statusCode, body: await noContent.body.text() }, { status: 304, body: '' }, 'a 304 goes without body')
  const head = await request(`${admin}/plugins/odd-admin/status?status=202`, { method: 'HEAD' })
  t.equal(head.statusCode, 202, 'HEAD runs the GET endpoint on the workers')
  await head.body.dump()
  t.notOk(cli.lines.some(l => l.msg === 'worker exited unexpectedly; restarting it'), 'no worker exited')
  t.equal((await request(`${admin}/readyz`)).statusCode, 200)
})

t.test('workers: with no worker serving, plugin admin endpoints and GET /stores answer 503 workers_missing', async t => {
  const { plugin, hold } = oddAdmin(t.testdir({}))
  const { cli, workers, admin } = await startCluster(t, '  u: { targets: [ { url: "http://127.0.0.1:1" } ] }', ROUTES, { loadPlugins: [plugin, PROBE] })
  // The replacements stay in their plugin setup, serving nothing, until `hold` goes.
  writeFileSync(hold, '')
  for (const pid of workers) process.kill(pid, 'SIGKILL')
  for (const pid of workers) t.ok(await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === pid, 10_000), `worker ${pid} gone`)

  const purge = await request(`${admin}/plugins/probe/echo`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(purge.statusCode, 503)
  t.match(await purge.body.json(), { error: 'workers_missing', message: /no worker is serving/, workers: [] })
  const stores = await request(`${admin}/stores`)
  t.equal(stores.statusCode, 503)
  t.same(await stores.body.json(), { error: 'workers_missing', message: 'no worker is serving (they are restarting): none could be asked; try again shortly' })
  // What the primary knows itself still answers (its view of the config; its own health checks).
  for (const path of ['/routes', '/upstreams']) {
    const res = await request(`${admin}${path}`)
    t.equal(res.statusCode, 200, path)
    await res.body.dump()
  }
  t.equal((await request(`${admin}/readyz`)).statusCode, 503)

  rmSync(hold)
  t.ok(await until(() => cli.lines.filter(l => l.msg === 'worker serving').length >= 4, 30_000), 'both replacements serve')
  const back = await request(`${admin}/stores`)
  t.equal(back.statusCode, 200)
  t.match(await back.body.json(), { stores: [{ name: 'memory' }] })
})
