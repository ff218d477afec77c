import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'

// A plugin hook still running when the route's request timeout fires: a 504 (the hook may wait on a
// service of its own), logged naming the plugin, not the upstream, which was not contacted yet
// (onRequest), or has answered (onResponse).
const dir = t.testdir({})
writeUserPlugin(dir, 'stall', 500, `{
  onRequest: (req) => req.path === '/request' ? new Promise(() => {}) : undefined,
  onResponse: (_res, req) => req.path === '/response' ? new Promise(() => {}) : undefined
}`)

const seen: string[] = []
const up = await startUpstream((req, res) => { seen.push(req.url as string); res.end('ok') })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./stall.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: request, match: { path: /request }, upstream: up, timeouts: { request: 300ms }, plugins: { stall: {} } }
  # Room for the upstream's answer on a loaded machine before the hook stalls: the timeout must find the hook running.
  - { name: response, match: { path: /response }, upstream: up, timeouts: { request: 1s }, plugins: { stall: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())

t.test('a hook that does not finish within the request timeout: 504, logged naming the plugin and the hook, never as the upstream\'s', async t => {
  for (const [path, hook, ms, contacted] of [['/request', 'onRequest', 300, []], ['/response', 'onResponse', 1000, ['/response']]] as const) {
    seen.length = 0
    const res = await request(`${gw.url}${path}`)
    t.equal(res.statusCode, 504, path)
    t.match(JSON.parse(await res.body.text()), { error: 'gateway_timeout', message: 'a plugin did not finish in time (the route\'s request timeout, or server.pluginTimeout)' })
    const id = res.headers['x-request-id']
    const line = await waitForLog(gw.logs, { msg: 'plugin timed out', requestId: id })
    t.match(line, { level: 40, plugin: 'stall', err: { message: `its ${hook} did not finish within the route's request timeout (${ms} ms)` } })
    t.notOk(gw.logs.some(l => l.requestId === id && (l.msg === 'upstream request failed' || l.msg === 'plugin failed')), `${path}: not logged as the upstream's, nor as a failure`)
    t.same(seen, contacted, `${path}: what the upstream saw`)
  }
})
