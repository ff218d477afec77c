import t from 'tap'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { configFile, gatewayYaml, startFromFile } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { probeEvents } from '../helpers/probe-plugin.ts'

const PROBE = fileURLToPath(new URL('../helpers/probe-plugin.ts', import.meta.url))
const TOKEN = 'platform-test-token-0123456789'

const config = (upstream: string, routes: string) => gatewayYaml({ u: [upstream] }, routes, `loadPlugins: ["${PROBE}"]
consumers:
  - { id: mobile-app, groups: [apps], credentials: { probe: { key: k-mobile } } }
plugins:
  probe: { tag: global }`).replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }\n', `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${TOKEN}"\n`)

const ROUTES = `  - { name: a, match: { path: /a }, upstream: u }
  - { name: b, match: { path: /b }, upstream: u, plugins: { probe: { tag: own } } }`

t.test('setup context: consumers, stores, metrics, shared values and admin endpoints', async t => {
  const up = await startUpstream()
  const cf = await configFile(config(up.url, ROUTES))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await up.close(); await cf.remove() })
  const admin = (path: string, init: { method?: 'GET' | 'POST' | 'PUT' | 'DELETE', body?: string, token?: string } = {}) => request(`${gw.adminUrl}${path}`, {
    method: init.method ?? 'GET',
    body: init.body,
    headers: { authorization: `Bearer ${init.token ?? TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) }
  })
  const upstreamSaw = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${gw.url}${path}`, { headers })
    return { consumer: res.headers['x-consumer'], seen: (await res.body.json() as { headers: Record<string, string> }).headers }
  }

  await t.test('a consumer recognised by a plugin is seen by later phases and logged', async t => {
    const { consumer, seen } = await upstreamSaw('/a', { 'x-probe-key': 'k-mobile' })
    t.equal(consumer, 'mobile-app')
    t.equal(seen['x-probe-tag'], 'global')
    const line = await until(() => gw.logs.some(l => l.msg === 'request' && l.consumer === 'mobile-app'))
    t.ok(line, 'the access log line carries the consumer id')
    t.equal((await upstreamSaw('/a', { 'x-probe-key': 'nope' })).consumer, undefined, 'an unknown key is no consumer')
  })

  await t.test('a store script counts per route, and the memory store keeps its counts across a reload', async t => {
    const before = Number((await upstreamSaw('/b')).seen['x-probe-count'])
    t.equal(Number((await upstreamSaw('/b')).seen['x-probe-count']), before + 1)
    await cf.write(config(up.url, ROUTES + '\n  - { name: c, match: { path: /c }, upstream: u }'))
    t.equal((await gw.reloader.reload('admin')).result, 'success')
    t.equal(Number((await upstreamSaw('/b')).seen['x-probe-count']), before + 2, 'not reset by the reload')
    t.equal(Number((await upstreamSaw('/c')).seen['x-probe-count']), 1, 'a new route has its own key')
  })

  await t.test('shared values are made once per config and disposed with it', async t => {
    t.ok(await until(() => probeEvents().includes('dispose shared a,b')), 'the first config\'s value, shared by routes a and b, was disposed after the reload')
    const res = await admin('/plugins/probe/routes')
    t.equal(res.statusCode, 200)
    t.same(await res.body.json(), { routes: ['a', 'b', 'c'] }, 'the current config\'s one value saw all three routes')
  })

  await t.test('metrics: the same counter across routes and reloads, labelled by route', async t => {
    const text = await (await admin('/metrics')).body.text()
    const count = (route: string) => Number(new RegExp(`^portcullis_probe_requests_total\\{route="${route}"\\} (\\d+)$`, 'm').exec(text)?.[1])
    t.equal(count('a'), 2)
    t.equal(count('b'), 3, 'counted before and after the reload')
    t.equal(count('c'), 1)
  })

  await t.test('admin endpoints: behind the token, JSON in and out, 404 and 405 like the rest', async t => {
    const echo = await admin('/plugins/probe/echo?x=1', { method: 'POST', body: '{"purge":"/a"}' })
    t.equal(echo.statusCode, 201)
    t.same(await echo.body.json(), { got: { purge: '/a' }, query: { x: '1' }, path: '/echo' })
    const denied = await admin('/plugins/probe/routes', { token: 'wrong-token-wrong-token' })
    t.equal(denied.statusCode, 401)
    await denied.body.dump()
    const missing = await admin('/plugins/probe/nothing')
    t.equal(missing.statusCode, 404)
    t.match(await missing.body.json(), { error: 'not_found' })
    const wrongMethod = await admin('/plugins/probe/routes', { method: 'DELETE' })
    t.equal(wrongMethod.statusCode, 405)
    t.equal(wrongMethod.headers.allow, 'GET, HEAD')
    await wrongMethod.body.dump()
  })

  await t.test('GET /stores lists the built-in memory store', async t => {
    const body = await (await admin('/stores')).body.json() as { stores: Array<{ name: string, type: string, state: string, entries: number }> }
    t.match(body.stores, [{ name: 'memory', type: 'memory', state: 'up' }])
    t.ok((body.stores[0]?.entries ?? 0) >= 3, 'the probe counters are in it')
  })
})
