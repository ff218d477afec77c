import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startH2Gateway } from '../helpers/http2.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { until } from '../helpers/wait.ts'

// Lines a client can provoke at will, one per request, try or stream, were each logged: 5,000 shed
// requests made 5,000 warnings. Now one per key in 10 s, then a summary of how many more (here
// logged as the gateway closes: no test waits 10 s); the metrics still count each.
const N = 30

async function statuses (url: string, headers: Record<string, string> = {}): Promise<number[]> {
  return await Promise.all(Array.from({ length: N }, async () => {
    const res = await request(url, { headers })
    await res.body.dump()
    return res.statusCode
  }))
}

/** The lines of `msg`, and once the gateway is closed, its summary: `N more like "<msg>"`. */
async function linesAndSummary (t: Test, gw: TestGateway, msg: string): Promise<{ lines: number, summary: Record<string, unknown> | undefined }> {
  const lines = gw.logs.filter(l => l.msg === msg).length
  await gw.close()
  const summaries = gw.logs.filter(l => typeof l.msg === 'string' && l.msg.includes(` more like "${msg}" in the last `))
  t.equal(summaries.length, 1, 'one summary')
  return { lines, summary: summaries[0] }
}

/** A gateway closed by the test, or at teardown if a check failed first. */
async function gateway (t: Test, yaml: string, options: { admin?: boolean, file?: string } = {}): Promise<TestGateway> {
  const gw = await startGateway(yaml, options)
  let closed = false
  const close = gw.close
  t.teardown(async () => { if (!closed) await close() })
  return { ...gw, close: async () => { closed = true; await close() } }
}

t.test(`${N} shed requests: one "upstream busy" line and a summary of the rest; each counted`, async t => {
  let arrived!: () => void
  const first = new Promise<void>(resolve => { arrived = resolve })
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const up = await startUpstream((req, res) => { req.resume(); arrived(); void held.then(() => res.end('ok')) })
  t.teardown(() => up.close())
  const gw = await gateway(t, `upstreams:
  up:
    targets: [ { url: "${up.url}" } ]
    connections: 1
    queue: { max: 0 }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`, { admin: true })
  const holding = request(`${gw.url}/hold`)
  await first
  t.same(await statuses(`${gw.url}/x`), Array(N).fill(503))
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_upstream_busy_total{upstream="up",reason="queue-full"}'), N, 'each counted')
  release()
  await (await holding).body.dump()
  const { lines, summary } = await linesAndSummary(t, gw, 'upstream busy: request refused')
  t.equal(lines, 1)
  t.match(summary, { level: 40, upstream: 'up', target: up.url, suppressed: N - 1 })
})

t.test(`${N} failed tries: one "upstream request failed" line and a summary`, async t => {
  const gw = await gateway(t, `upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${await deadPort()}" } ], passive: false, retries: false }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.same(await statuses(`${gw.url}/x`), Array(N).fill(502))
  const { lines, summary } = await linesAndSummary(t, gw, 'upstream request failed')
  t.equal(lines, 1)
  t.match(summary, { level: 40, upstream: 'up', code: 'ECONNREFUSED', suppressed: N - 1 })
})

t.test(`a plugin that throws on ${N} clients' input: one "plugin failed" error line and a summary`, async t => {
  const dir = t.testdir({})
  writeUserPlugin(dir, 'picky', 500, "{ onRequest (req: any) { throw new Error('cannot read x-input: ' + req.headers['x-input']) } }")
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await gateway(t, `loadPlugins: [ ./picky.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: { picky: {} } }
`, { file: `${dir}/gateway.yaml` })
  t.same(await statuses(`${gw.url}/x`, { 'x-input': 'bad' }), Array(N).fill(500))
  t.same(await statuses(`${gw.url}/x`, { 'x-input': 'worse' }), Array(N).fill(500), 'another message')
  const lines = gw.logs.filter(l => l.msg === 'plugin failed')
  t.same(lines.map(l => (l.err as { message: string }).message), ['cannot read x-input: bad', 'cannot read x-input: worse'], 'one line each')
  await gw.close()
  const summaries = gw.logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith(`${N - 1} more like "plugin failed" in the last `))
  t.equal(summaries.length, 2)
  t.match(summaries, [
    { level: 50, route: 'all', plugin: 'picky', err: { message: 'cannot read x-input: bad' }, suppressed: N - 1 },
    { level: 50, route: 'all', plugin: 'picky', err: { message: 'cannot read x-input: worse' }, suppressed: N - 1 }
  ])
})

t.test(`${N} stalled uploads on one h2c connection: one "client too slow" line and a summary`, async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', catchAllYaml(up.url), { server: '  clientTimeouts: { body: 300ms }\n' })
  const session = await connect({ h2c: true })
  session.on('error', () => {})
  for (let i = 0; i < N; i++) {
    const stream = session.request({ ':path': `/${i}`, ':method': 'POST' })
    stream.on('error', () => {})
    stream.resume()
    stream.write('part of a body')
  }
  const cut = () => gw.logs.filter(l => l.msg === 'request' && l.error === 'client_body_timeout').length
  t.ok(await until(() => cut() === N, 20_000), `every stream cut (${cut()})`)
  session.destroy()
  const { lines, summary } = await linesAndSummary(t, gw, 'client too slow: stream reset')
  t.equal(lines, 1)
  t.match(summary, { level: 40, error: 'client_body_timeout', suppressed: N - 1 })
})

t.test('connections past server.maxConnections: one warning, then a summary (GatewayServer\'s warnings are limited alike)', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await gateway(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
  maxConnections: 1
${catchAllYaml(up.url)}`)
  const port = Number(new URL(gw.url).port)
  const open = async () => { const s = connect(port, '127.0.0.1'); s.on('error', () => {}); await once(s, 'connect'); return s }
  const held = await open()
  t.teardown(() => held.destroy())
  // Served: the gateway counts it (it was accepted before any other).
  held.write('GET /x HTTP/1.1\r\nhost: x\r\n\r\n')
  await once(held, 'data')
  for (let i = 0; i < N; i++) {
    const s = await open()
    await once(s, 'close')
  }
  held.destroy()
  const { lines, summary } = await linesAndSummary(t, gw, 'connection limit reached: new connections are closed (server.maxConnections)')
  t.equal(lines, 1)
  t.match(summary, { level: 40, maxConnections: 1, suppressed: N - 1 })
})
