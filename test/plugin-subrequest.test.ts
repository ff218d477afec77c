import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream, echo } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'

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
