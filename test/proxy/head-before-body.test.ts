import t from 'tap'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'

// An upstream that sends its head at once and its first body byte later (an event stream): Node
// sends a written head with the first body byte, so the client saw nothing meanwhile, and nothing
// at all when the upstream then broke. The head now goes out once the body is not in the same read.
// Here the upstream sends its first byte only once the client has the head.
const waiting = new Map<string, ServerResponse>()
const up = await startUpstream((req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  res.flushHeaders()
  waiting.set(req.url as string, res)
})
t.teardown(() => up.close())
const dir = t.testdir({})
writeUserPlugin(dir, 'marker', 100, "{ onResponse (res) { res.headers['x-seen'] = 'yes' } }")
const gw = await startGateway(`
loadPlugins: [ ./marker.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: hooked, match: { path: /hooked/* }, upstream: up, plugins: { marker: {} } }
  - { name: plain, match: { path: /* }, upstream: up }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

for (const path of ['/plain/events', '/hooked/events']) {
  t.test(`${path}: the head reaches the client before the first body byte`, async t => {
    const res = await request(`${gw.url}${path}`, { headersTimeout: 10_000 })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'text/event-stream')
    waiting.get(path)?.end('data: 1\n\n')
    t.equal(await res.body.text(), 'data: 1\n\n')
  })

  t.test(`${path}: an upstream that breaks before its first body byte: the client has the head, then the cut`, async t => {
    const broken = `${path}-broken`
    const res = await request(`${gw.url}${broken}`, { headersTimeout: 10_000 })
    t.equal(res.statusCode, 200)
    waiting.get(broken)?.destroy()
    await t.rejects(res.body.text())
    t.match(await waitForLog(gw.logs, { msg: 'request', requestId: res.headers['x-request-id'] }), { status: 200, error: 'upstream_broken' })
  })
}
