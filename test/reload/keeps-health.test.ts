import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configFile, namedUpstream, startFromFile, waitFor } from './helpers.ts'
import { sharedWithPlugins } from '../helpers/user-plugin.ts'

/** An upstream that serves traffic (`status`, its name as body) and answers its health check with `health`. */
const upstream = (name: string, status: number, health: number) => startUpstream((req: IncomingMessage, res: ServerResponse) => {
  req.resume()
  if (req.url === '/health') res.writeHead(health).end()
  else res.writeHead(status, { 'content-type': 'text/plain' }).end(name)
})

async function bodies (url: string, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await request(url)
    out.push(`${res.statusCode} ${await res.body.text()}`)
  }
  return out
}

const yaml = (pool: string, extraRoute: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  pool:
${pool}
routes:
  - { name: api, match: { path: /api }, upstream: pool }
${extraRoute}
`

async function reload (adminUrl: string): Promise<string> {
  const res = await request(`${adminUrl}/config/reload`, { method: 'POST' })
  return ((await res.body.json()) as { result: string }).result
}

t.test('a target found unhealthy by active checks stays out after a reload', async t => {
  const [good, sick] = await Promise.all([namedUpstream('good'), upstream('sick', 200, 503)])
  const pool = (interval: string, unhealthyAfter: number) => `    targets: [ { url: "${good.url}" }, { url: "${sick.url}" } ]
    healthCheck: { path: /health, interval: ${interval}, unhealthyAfter: ${unhealthyAfter}, healthyAfter: 2 }`
  const cf = await configFile(yaml(pool('100ms', 1), ''))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([good.close(), sick.close(), cf.remove()]) })
  const sickHealth = async () => {
    const body = await (await request(`${gw.adminUrl}/upstreams`)).body.json() as { upstreams: Array<{ targets: Array<{ url: string, healthy: boolean }> }> }
    return body.upstreams[0]?.targets.find(x => x.url === sick.url)?.healthy
  }
  t.equal(await waitFor(async () => await sickHealth() === false ? false : undefined), false, 'found unhealthy')

  // After the reload the checks are slow and need 3 failures: re-learning would take hours.
  await cf.write(yaml(pool('1h', 3), '  - { name: more, match: { path: /more }, upstream: pool }'))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  t.equal(await sickHealth(), false, 'still unhealthy in the new runtime')
  t.same(new Set(await bodies(`${gw.url}/api`, 10)), new Set(['200 good']), 'no request reaches it')
})

t.test('a target ejected by outlier detection stays ejected after a reload', async t => {
  const [good, failing] = await Promise.all([namedUpstream('good'), upstream('failing', 502, 200)])
  const pool = `    targets: [ { url: "${good.url}" }, { url: "${failing.url}" } ]
    passive: { consecutiveFailures: 2, baseEjection: 1h, maxEjection: 1h }
    retries: false`
  const cf = await configFile(yaml(pool, ''))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([good.close(), failing.close(), cf.remove()]) })
  const before = await bodies(`${gw.url}/api`, 8)
  t.equal(before.filter(b => b === '502 failing').length, 2, 'two failures eject it')
  t.same(new Set(before.slice(-4)), new Set(['200 good']), 'then it gets nothing')

  await cf.write(yaml(pool, '  - { name: more, match: { path: /more }, upstream: pool }'))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  t.same(new Set(await bodies(`${gw.url}/api`, 10)), new Set(['200 good']), 'still ejected in the new runtime')

  await cf.write(yaml(pool.replace(/passive: .*/, 'passive: false'), ''))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  t.equal((await bodies(`${gw.url}/api`, 10)).filter(b => b === '502 failing').length, 5, 'passive: false: the ejection is not taken over, it is back in at once')
})

t.test('a target found by DNS discovery and ejected stays ejected after a reload', async t => {
  const [good, failing] = await Promise.all([namedUpstream('good'), upstream('failing', 502, 200)])
  // The new runtime's discovery creates its targets after the build: they must still take over the old state.
  // maxEjectionPercent: with ::1 (below) two targets of three fail, and both are to be ejected.
  const pool = `    targets: [ { url: "${good.url}" }, { url: "http://localhost:${failing.port}", resolve: dns } ]
    passive: { consecutiveFailures: 2, baseEjection: 1h, maxEjection: 1h, maxEjectionPercent: 100 }
    retries: false`
  const cf = await configFile(yaml(pool, ''))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([good.close(), failing.close(), cf.remove()]) })
  // localhost may also give ::1, a target of its own that is refused (502) and ejected the same way.
  const before = await bodies(`${gw.url}/api`, 12)
  t.equal(before.filter(b => b === '502 failing').length, 2, 'two failures eject it')
  t.same(new Set(before.slice(-4)), new Set(['200 good']), 'then it gets nothing')

  await cf.write(yaml(pool, '  - { name: more, match: { path: /more }, upstream: pool }'))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  t.same(new Set(await bodies(`${gw.url}/api`, 10)), new Set(['200 good']), 'still ejected in the new runtime')
})

// The end of a passive ejection is logged, as `target healthy` is for active checks: once, by the
// runtime the ejection passed to on reload, not also by the one it replaced (still draining).
t.test('the end of an ejection is logged once, also when a reload took the ejection over', async t => {
  const [good, failing] = await Promise.all([namedUpstream('good'), upstream('failing', 502, 200)])
  let release: (() => void) | undefined
  const slow = await startUpstream((req, res) => { req.resume(); release = () => res.end('slow') })
  const pool = `    targets: [ { url: "${good.url}" }, { url: "${failing.url}" } ]
    passive: { consecutiveFailures: 1, baseEjection: 600ms }
    retries: false`
  const config = (n: number) => yaml(`${pool}
  slow:
    targets: [ { url: "${slow.url}" } ]`, `  - { name: slow-${n}, match: { path: /slow }, upstream: slow }`)
  const cf = await configFile(config(0))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { release?.(); await gw.close(); await Promise.all([good.close(), failing.close(), slow.close(), cf.remove()]) })
  const ended = () => gw.logs.filter(l => l.msg === 'target ejection ended')

  await bodies(`${gw.url}/api`, 2)
  t.ok(gw.logs.some(l => l.msg === 'target ejected after consecutive failures'), 'ejected')
  // A request held open keeps the first runtime (and its upstreams) draining past the reload.
  const held = request(`${gw.url}/slow`).then(r => r.body.text())
  t.ok(await waitFor(() => release === undefined ? undefined : true), 'a request held on the first runtime')
  await cf.write(config(1))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  t.ok(await waitFor(() => ended().length > 0 ? true : undefined, 3_000), 'the end of the ejection is logged')
  t.match(ended()[0], { level: 30, upstream: 'pool', target: failing.url })
  await new Promise(resolve => setTimeout(resolve, 300)) // a second line (the old runtime's) would come at the same time
  t.equal(ended().length, 1, 'once')
  release?.()
  t.equal(await held, 'slow')
})

t.test('an open circuit breaker stays open after a reload', async t => {
  const [good, failing] = await Promise.all([namedUpstream('good'), upstream('failing', 502, 200)])
  const pool = `    targets: [ { url: "${good.url}" }, { url: "${failing.url}" } ]
    passive: false
    circuitBreaker: { failureRate: 0.5, minRequests: 2, window: 1h, halfOpenAfter: 1h }
    retries: false`
  const cf = await configFile(yaml(pool, ''))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([good.close(), failing.close(), cf.remove()]) })
  const before = await bodies(`${gw.url}/api`, 8)
  t.equal(before.filter(b => b === '502 failing').length, 2, 'two failures open its breaker')
  t.same(new Set(before.slice(-4)), new Set(['200 good']), 'then it gets nothing')

  await cf.write(yaml(pool, '  - { name: more, match: { path: /more }, upstream: pool }'))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  t.same(new Set(await bodies(`${gw.url}/api`, 10)), new Set(['200 good']), 'still open in the new runtime')
})

t.test('a reload does not refill the retry budget: only time does (10 a second)', async t => {
  // Two addresses nothing listens on: each request fails to connect and is retried once, spending the budget.
  const dead = [`http://127.0.0.1:${await deadPort()}`, `http://127.0.0.1:${await deadPort(true)}`]
  const pool = `    targets: [ { url: "${dead[0]}" }, { url: "${dead[1]}" } ]
    passive: false`
  const cf = await configFile(yaml(pool, ''))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await cf.remove() })
  const budget = async () => {
    const body = await (await request(`${gw.adminUrl}/upstreams`)).body.json() as { upstreams: Array<{ retryBudget: number }> }
    return body.upstreams[0]?.retryBudget
  }
  // 10 in reserve, 0.2 deposited per request, 1 spent per retry: 13 requests leave less than 1 (and what time adds).
  t.same(new Set((await bodies(`${gw.url}/api`, 13)).map(b => b.slice(0, 3))), new Set(['502']), 'each one refused')
  const spentAt = performance.now()
  const spent = await budget() as number
  t.ok(spent < 10, `retries spent: ${spent} left`)

  await cf.write(yaml(pool, '  - { name: more, match: { path: /more }, upstream: pool }'))
  t.equal(await reload(String(gw.adminUrl)), 'success')
  const after = await budget() as number
  const refilled = Math.ceil((performance.now() - spentAt) / 100)
  t.ok(after <= spent + refilled, `the new runtime takes over the balance: ${after} <= ${spent} + ${refilled} refilled by time since, not the full 10`)
})

t.test('a breaker that opens while a reload is being built (a slow plugin setup) is open in the new runtime', async t => {
  let failing = false
  const [good, flaky] = await Promise.all([namedUpstream('good'), startUpstream((req, res) => {
    req.resume()
    res.writeHead(failing ? 502 : 200, { 'content-type': 'text/plain' }).end('flaky')
  })])
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-slow-setup-'))
  // The setup waits for the test: the reload's build is under way while the old runtime serves.
  let release = (): void => {}
  sharedWithPlugins('gate', new Promise<void>(resolve => { release = resolve }))
  let started = (): void => {}
  const building = new Promise<void>(resolve => { started = resolve })
  sharedWithPlugins('started', () => started())
  await writeFile(join(dir, 'slow.ts'), `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: 'slow', priority: 500, schema: Type.Object({}), setup: async () => { (globalThis as any)[Symbol.for('portcullis.test.shared.started')](); await (globalThis as any)[Symbol.for('portcullis.test.shared.gate')]; return {} } })
`)
  const pool = `    targets: [ { url: "${good.url}" }, { url: "${flaky.url}" } ]
    passive: false
    circuitBreaker: { failureRate: 0.5, minRequests: 2, window: 1h, halfOpenAfter: 1h }
    retries: false`
  const cf = await configFile(yaml(pool, ''))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { release(); await gw.close(); await Promise.all([good.close(), flaky.close(), cf.remove(), rm(dir, { recursive: true, force: true })]) })
  t.same(new Set(await bodies(`${gw.url}/api`, 4)), new Set(['200 good', '200 flaky']), 'both serve')

  await cf.write(`loadPlugins: [ ${JSON.stringify(join(dir, 'slow.ts'))} ]\n` + yaml(pool, '  - { name: more, match: { path: /more }, upstream: pool, plugins: { slow: {} } }'))
  const reloaded = reload(String(gw.adminUrl))
  await building // the new runtime has taken over what the old one knew then (inheritState)
  failing = true
  const during = await bodies(`${gw.url}/api`, 8)
  t.equal(during.filter(b => b === '502 flaky').length, 2, 'two failures open its breaker, during the build')
  release()
  t.equal(await reloaded, 'success')
  t.same(new Set(await bodies(`${gw.url}/api`, 10)), new Set(['200 good']), 'still open in the new runtime')
})
