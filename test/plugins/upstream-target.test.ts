import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// req.upstreamPath and req.query make the upstream request's target: origin-form only, so that a
// plugin never sends an absolute URL (an upstream would take its host over Host) nor a fragment.
const dir = t.testdir({})
writeUserPlugin(dir, 'target', 500, `{
  onRequest (req) {
    const path = req.headers['x-path']
    const query = req.headers['x-query']
    if (path !== undefined) req.upstreamPath = path
    if (query !== undefined) req.query = query
  }
}`)

const seen: string[] = []
const up = await startUpstream((req, res) => { seen.push(req.url as string); res.end('ok') })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./target.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { target: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())

async function send (headers: Record<string, string>): Promise<{ status: number, body: string, id: string }> {
  const res = await request(`${gw.url}/from`, { headers })
  return { status: res.statusCode, body: await res.body.text(), id: res.headers['x-request-id'] as string }
}

t.test('an origin-form path and a query are sent as set', async t => {
  seen.length = 0
  t.equal((await send({ 'x-path': '/to/here', 'x-query': '?a=1&b=2' })).status, 200)
  t.equal((await send({ 'x-path': '/to/here', 'x-query': '' })).status, 200)
  t.same(seen, ['/to/here?a=1&b=2', '/to/here'])
})

t.test('anything else is refused where the plugin sets it: a 500 plugin_error naming what was wrong, nothing sent upstream', async t => {
  seen.length = 0
  for (const [headers, message] of [
    [{ 'x-path': `${up.url}/abs` }, /req\.upstreamPath does not start with a single "\/"/],
    [{ 'x-path': '//evil.example/x' }, /req\.upstreamPath does not start with a single "\/"/],
    [{ 'x-path': '/\\evil.example/x' }, /req\.upstreamPath does not start with a single "\/"/],
    [{ 'x-path': 'evil' }, /req\.upstreamPath does not start with a single "\/"/],
    [{ 'x-path': '/a#frag' }, /req\.upstreamPath holds a "#"/],
    [{ 'x-query': '?a=1#frag' }, /req\.query holds a "#"/],
    [{ 'x-query': 'a=1' }, /req\.query is neither empty nor starts with "\?"/]
  ] as const) {
    const res = await send(headers)
    t.equal(res.status, 500, JSON.stringify(headers))
    t.match(res.body, /"error":"plugin_error"/)
    const line = await waitForLog(gw.logs, { msg: 'plugin failed', requestId: res.id })
    t.match((line?.err as { message?: string } | undefined)?.message, message, JSON.stringify(headers))
  }
  t.same(seen, [], 'the upstream got none of them')
})
