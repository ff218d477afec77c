import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

// The observer hooks (onUpstreamTry, onUpstreamTryEnd, onFinished) through a real gateway: a user
// plugin records what it sees and tags each try's headers; two targets answer 503 to a request's
// first try and 200 to its retry.
const INDEX = new URL('../../src/index.ts', import.meta.url).href
const dir = t.testdir({})
writeFileSync(join(dir, 'observer.ts'), `
import { definePlugin, Type } from ${JSON.stringify(INDEX)}
const g = globalThis as Record<symbol, string[] | undefined>
const events = (g[Symbol.for('portcullis.test.observer')] ??= [])
export default definePlugin({
  name: 'observer',
  priority: 10,
  schema: Type.Object({ throws: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  setup (config, ctx) {
    return {
      onUpstreamTry (req, target, attempt) {
        if (config.throws === true) throw new Error('observer broke')
        req.headers['x-try'] = String(attempt)
        events.push(\`\${req.id} try \${attempt} \${target.url.startsWith('http://127.0.0.1:')} \${ctx.routePath}\`)
      },
      onUpstreamTryEnd (req, status, error) {
        events.push(\`\${req.id} end \${status ?? '-'} \${(error as { code?: string } | undefined)?.code ?? '-'}\`)
      },
      onFinished (req, status) {
        events.push(\`\${req.id} finished \${status} \${req.startedAt > 0 && req.startedAt <= performance.now()}\`)
      }
    }
  }
})
`)
const events = ((globalThis as Record<symbol, string[] | undefined>)[Symbol.for('portcullis.test.observer')] ??= [])
const eventsOf = (id: string) => events.filter(e => e.startsWith(id + ' ')).map(e => e.slice(id.length + 1))

const seen = new Map<string, number>()
const tries: string[] = []
const flaky = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
  const id = String(req.headers['x-request-id'])
  const n = (seen.get(id) ?? 0) + 1
  seen.set(id, n)
  tries.push(`${id} ${String(req.headers['x-try'])}`)
  res.writeHead(n === 1 ? 503 : 200, { 'content-type': 'text/plain' })
  res.end(n === 1 ? 'busy' : 'ok')
}
const a = await startUpstream(flaky)
const b = await startUpstream(flaky)
const gone = `http://127.0.0.1:${await deadPort()}` // refuses connections
const busy = await startUpstream((_req, res) => { res.writeHead(503); res.end('busy') })
t.teardown(() => Promise.all([a.close(), b.close(), busy.close()]))

const gw = await startGateway(`
loadPlugins: [ ./observer.ts ]
upstreams:
  flaky: { targets: [ { url: "${a.url}" }, { url: "${b.url}" } ], retries: { on: [503] }, passive: false }
  gone: { targets: [ { url: "${gone}" } ], retries: false, passive: false }
  busyThenGone: { targets: [ { url: "${busy.url}" }, { url: "${gone}" } ], retries: { on: [503] }, passive: false }
routes:
  - { name: retried, match: { path: /retried }, upstream: flaky, plugins: { observer: {} } }
  - { name: refused, match: { path: /refused/:id }, upstream: gone, plugins: { observer: {} } }
  - name: answered
    match: { path: /answered }
    upstream: flaky
    plugins: { observer: {}, request-termination: { status: 204 } }
  - { name: busy-then-gone, match: { path: /busy-then-gone }, upstream: busyThenGone, plugins: { observer: {} } }
  - { name: broken, match: { path: /broken }, upstream: flaky, plugins: { observer: { throws: true } } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

t.test('a retried request: one try event pair per try, headers set per try, then finished', async t => {
  const res = await request(`${gw.url}/retried`, { headers: { 'x-request-id': 'retried-1' } })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'ok')
  t.ok(await until(() => eventsOf('retried-1').length === 5))
  t.same(eventsOf('retried-1'), [
    'try 1 true /retried',
    'end 503 -',
    'try 2 true /retried',
    'end 200 -',
    'finished 200 true'
  ])
  t.same(tries.filter(l => l.startsWith('retried-1 ')), ['retried-1 1', 'retried-1 2'], 'each try carried the header its hook set')
})

t.test('a try that cannot connect ends with its error; the request finishes 502', async t => {
  const res = await request(`${gw.url}/refused/7`, { headers: { 'x-request-id': 'refused-1' } })
  t.equal(res.statusCode, 502)
  await res.body.dump()
  t.ok(await until(() => eventsOf('refused-1').length === 3))
  t.same(eventsOf('refused-1'), ['try 1 true /refused/:id', 'end - ECONNREFUSED', 'finished 502 true'])
})

t.test('a retry that cannot connect ends with no status, not the status of the try before it', async t => {
  const res = await request(`${gw.url}/busy-then-gone`, { headers: { 'x-request-id': 'busy-gone-1' } })
  t.equal(res.statusCode, 502)
  await res.body.dump()
  t.ok(await until(() => eventsOf('busy-gone-1').length === 5))
  // Round robin: the first try goes to the first target (503), the retry to the other (refused).
  t.same(eventsOf('busy-gone-1'), ['try 1 true /busy-then-gone', 'end 503 -', 'try 2 true /busy-then-gone', 'end - ECONNREFUSED', 'finished 502 true'])
})

t.test('a request a plugin answers has no try, and still finishes', async t => {
  const res = await request(`${gw.url}/answered`, { headers: { 'x-request-id': 'answered-1' } })
  t.equal(res.statusCode, 204)
  await res.body.dump()
  t.ok(await until(() => eventsOf('answered-1').length === 1))
  t.same(eventsOf('answered-1'), ['finished 204 true'])
})

t.test('an observer that throws is logged; the request goes on', async t => {
  const res = await request(`${gw.url}/broken`, { headers: { 'x-request-id': 'broken-1' } })
  t.equal(res.statusCode, 200, 'retried and answered as without the plugin')
  t.equal(await res.body.text(), 'ok')
  const line = await waitForLog(gw.logs, { msg: 'plugin onUpstreamTry hook failed', requestId: 'broken-1' })
  t.equal(line?.plugin, 'observer')
  t.same(eventsOf('broken-1').filter(e => e.startsWith('try')), [], 'the throwing hook recorded nothing')
})
