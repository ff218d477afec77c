import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream, echo } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { until } from './helpers/wait.ts'

// A plugin that answers with what its subrequest got: the upstream's status, one header and the echoed request.
const dir = t.testdir({})
const index = new URL('../src/index.ts', import.meta.url).href
writeFileSync(join(dir, 'sub.ts'), `
import { definePlugin, Type } from ${JSON.stringify(index)}
export default definePlugin({
  name: 'sub', priority: 500, schema: Type.Object({}),
  setup: () => ({
    async onRequest (req) {
      try {
        const r = await req.subrequest('GET', { ...req.headers, 'x-sub': 'yes' })
        const chunks = []
        for await (const c of r.body) chunks.push(c)
        return { status: 200, body: { status: r.status, type: r.headers['content-type'], echoed: JSON.parse(Buffer.concat(chunks).toString()), clientId: req.id } }
      } catch (err) {
        return { status: 599, body: { error: err.message } }
      }
    }
  })
})
`)

const up = await startUpstream(echo)
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./sub.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
  down: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: /api/* }, stripPrefix: /api, hostHeader: internal.example, upstream: up, plugins: { sub: {} } }
  - { name: gone, match: { path: /gone }, upstream: down, plugins: { sub: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())

t.test('a subrequest goes to the route\'s upstream with its path, query, Host rule and request id', async t => {
  const res = await request(`${gw.url}/api/items?x=1`, { method: 'POST', body: 'ignored', headers: { 'x-client': 'c' } })
  const body = await res.body.json() as { status: number, type: string, echoed: { method: string, url: string, headers: Record<string, string> }, clientId: string }
  t.equal(body.status, 200)
  t.equal(body.type, 'application/json')
  t.equal(body.echoed.method, 'GET')
  t.equal(body.echoed.url, '/items?x=1')
  t.equal(body.echoed.headers.host, 'internal.example')
  t.equal(body.echoed.headers['x-client'], 'c')
  t.equal(body.echoed.headers['x-sub'], 'yes')
  t.equal(body.echoed.headers['x-request-id'], body.clientId)
})

t.test('a subrequest to an unreachable upstream rejects', async t => {
  const res = await request(`${gw.url}/gone`)
  t.equal(res.statusCode, 599)
  t.match(await res.body.json(), { error: /ECONNREFUSED|connect/ })
})

t.test('subrequests count for their target\'s health and latency, and hold a connection slot only while they run', async t => {
  let release: (() => void) | undefined
  const flaky = await startUpstream((req, res) => {
    const answer = () => { res.writeHead(req.url === '/fail' ? 503 : 200, { 'content-type': 'application/json' }).end('{}') }
    if (req.url === '/slow') release = answer
    else setTimeout(answer, 5)
  })
  const spare = await startUpstream()
  t.teardown(() => Promise.all([flaky.close(), spare.close()]))
  // pair and down: a spare target beside the one under test, so that it is not the last available
  // (never ejected); weight 1 against 1000, round-robin sends it none of these few subrequests.
  const g = await startGateway(`
loadPlugins: [ ./sub.ts ]
upstreams:
  flaky: { targets: [ { url: "${flaky.url}" } ], connections: 1 }
  pair: { targets: [ { url: "${flaky.url}", weight: 1000 }, { url: "${spare.url}" } ], passive: { consecutiveFailures: 2 } }
  down: { targets: [ { url: "http://127.0.0.1:1", weight: 1000 }, { url: "${spare.url}" } ], passive: { consecutiveFailures: 2 } }
routes:
  - { name: r, match: { path: /* }, upstream: flaky, plugins: { sub: {} } }
  - { name: pair, match: { path: /pair/* }, stripPrefix: /pair, upstream: pair, plugins: { sub: {} } }
  - { name: gone, match: { path: /gone }, upstream: down, plugins: { sub: {} } }
`, { file: join(dir, 'gw.yaml'), admin: true })
  t.teardown(() => g.close())
  const sub = async (path: string) => {
    const res = await request(`${g.url}${path}`)
    return await res.body.json() as { status?: number, error?: string }
  }
  const target = async (upstream: string) => {
    const { upstreams } = await (await request(`${g.adminUrl as string}/upstreams`)).body.json() as { upstreams: Array<{ name: string, targets: Array<{ down: string[], inFlight: number, latencyMs: number }> }> }
    return upstreams.find(u => u.name === upstream)?.targets[0]
  }
  t.same([(await sub('/ok')).status, (await sub('/ok')).status], [200, 200], 'one slot, given back after each subrequest')
  t.equal((await target('flaky'))?.inFlight, 0)
  t.ok(((await target('flaky'))?.latencyMs ?? 0) > 0, 'their answers are timed')
  const slow = request(`${g.url}/slow`)
  t.ok(await until(() => release !== undefined))
  t.match(await sub('/ok'), { error: `target ${flaky.url} has no free connection slot` }, 'background work never queues for a slot')
  ;(release as () => void)()
  await (await slow).body.json()
  t.equal((await sub('/pair/fail')).status, 503)
  t.equal((await sub('/pair/ok')).status, 200)
  t.equal((await sub('/pair/fail')).status, 503)
  t.same((await target('pair'))?.down, [], 'a success between two 503s: not two failures in a row')
  t.equal((await sub('/pair/fail')).status, 503)
  t.same((await target('pair'))?.down, ['ejected'], 'two 503s in a row eject the target')
  await sub('/gone')
  t.same((await target('down'))?.down, [], 'one refused connection')
  await sub('/gone')
  const down = await target('down')
  t.same(down?.down, ['ejected'], 'two eject it')
  t.ok((down?.latencyMs ?? 0) > 0, 'a refused connection is no sign of speed: it counts as a slow answer for the balancer')
})
