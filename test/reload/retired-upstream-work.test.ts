import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile, startFromFile } from './helpers.ts'

// An upstream the new config no longer has stops its health checks (and DNS discovery, and its
// metrics) when the reload puts the new config in service, not when the old one's last request ends.

t.test('a removed upstream\'s health checks stop at the reload, though a request on it is still open', async t => {
  let checks = 0
  let release: (() => void) | undefined
  const old = await startUpstream((req, res) => {
    if (req.url === '/health') { checks++; res.end('ok'); return }
    release = () => res.end('slow')
  })
  const other = await startUpstream()
  const yaml = (upstreams: string, routes: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  other:
    targets: [ { url: "${other.url}" } ]
${upstreams}
routes:
  - { name: other, match: { path: /other }, upstream: other }
${routes}
`
  const cf = await configFile(yaml(`  old:
    targets: [ { url: "${old.url}" } ]
    healthCheck: { path: /health, interval: 250ms }`, '  - { name: old, match: { path: /old }, upstream: old }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { release?.(); await gw.close(); await Promise.all([old.close(), other.close(), cf.remove()]) })

  const slow = request(`${gw.url}/old`).then(async r => r.body.text())
  // The request open on the old upstream has reached it (else the reload would send it to none, and release() would end nothing).
  t.ok(await until(() => checks >= 2 && release !== undefined), 'checked, and a request open on it')
  await cf.write(yaml('', ''))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  t.match(await res.body.json(), { result: 'success' })
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.notMatch(metrics, /portcullis_upstream_target_healthy\{upstream="old"/, 'the removed upstream is gone from /metrics')
  const atReload = checks
  await new Promise(resolve => setTimeout(resolve, 1_000)) // 4 check intervals: a check would have come
  t.equal(checks, atReload, 'no health check after the reload')
  release?.()
  t.equal(await slow, 'slow', 'the request open on the removed upstream still completes')
})

// A kept upstream keeps its checks in the old runtime only while HTTP requests there may still
// retry: a WebSocket alone does not keep them (each reload would add a runtime's worth of checks).
t.test('a retired runtime with only WebSockets left stops its health checks', async t => {
  let checks = 0
  const server = createServer((req, res) => { if (req.url === '/health') checks++; res.end('ok') })
  const wss = new WebSocketServer({ server })
  wss.on('connection', ws => ws.on('message', (data, binary) => ws.send(data, { binary })))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  ws:
    targets: [ { url: "${url}" } ]
    healthCheck: { path: /health, interval: 100ms }
routes:
  - { name: live-${n}, match: { path: /live }, upstream: ws }
`
  const cf = await configFile(yaml(0))
  const gw = await startFromFile(cf.file)
  const sockets: WebSocket[] = []
  t.teardown(async () => {
    for (const ws of sockets) ws.terminate()
    await gw.close()
    await new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(resolve) })
    await cf.remove()
  })
  const open = async () => {
    const ws = new WebSocket(gw.url.replace('http', 'ws') + '/live')
    sockets.push(ws)
    await once(ws, 'open')
    return ws
  }
  const echo = async (ws: WebSocket, text: string) => { ws.send(text); const [data] = await once(ws, 'message'); return String(data) }
  // A socket open in each runtime a reload retires.
  const retired = []
  for (let n = 1; n <= 4; n++) {
    await open()
    retired.push(gw.gateway.runtime)
    await cf.write(yaml(n))
    t.equal((await gw.reloader.reload('admin')).result, 'success')
  }
  t.same(retired.map(r => r.inFlight), [1, 1, 1, 1], 'each retired runtime holds its socket')
  t.equal(await echo(sockets[0] as WebSocket, 'after'), 'after', 'the first socket still works')

  const from = checks
  await new Promise(resolve => setTimeout(resolve, 1_000))
  // One runtime checking every 100 ms: about 10; all five (the bug) about 50.
  t.ok(checks - from <= 20, `health checks in 1 s: ${checks - from}`)
  t.equal(await echo(sockets[3] as WebSocket, 'still'), 'still', 'the sockets outlive the checks')
})

// A response that has begun is never retried: a retired runtime whose requests left have all begun
// their responses (SSE, downloads) stops its checks too, at once or within a second of the last one's start.
// Each config checks a path of its own (/health/<n>), on a connection of its own: which runtimes check is
// seen, not guessed from a rate (a loaded machine slows every runtime's checks).
t.test('a retired runtime whose requests have all begun their responses stops its health checks', async t => {
  const checks = new Map<string, number>()
  const sockets = new Map<string, Set<Socket>>()
  let begin: (() => void) | undefined
  const open: Array<{ end: () => void }> = []
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    if (path.startsWith('/health/')) {
      checks.set(path, (checks.get(path) ?? 0) + 1)
      sockets.set(path, (sockets.get(path) ?? new Set()).add(req.socket))
      res.end('ok')
      return
    }
    open.push(res)
    const stream = () => { res.writeHead(200, { 'content-type': 'text/event-stream' }); res.write('data: 1\n\n') }
    if (req.url === '/held') begin = stream
    else stream()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  events:
    targets: [ { url: "${url}" } ]
    healthCheck: { path: /health/${n}, interval: 100ms }
routes:
  - { name: events-${n}, match: { path: /* }, upstream: events }
`
  const cf = await configFile(yaml(0))
  const gw = await startFromFile(cf.file)
  const bodies: Array<{ destroy: () => void }> = []
  t.teardown(async () => {
    for (const b of bodies) b.destroy()
    for (const r of open) r.end()
    await gw.close()
    await new Promise(resolve => { server.closeAllConnections(); server.close(resolve) })
    await cf.remove()
  })
  const reload = async (n: number) => { await cf.write(yaml(n)); t.equal((await gw.reloader.reload('admin')).result, 'success') }
  /** Checks so far of config `n`'s runtime, and whether it still has a check connection open (stopped checks close it). */
  const count = (n: number) => checks.get(`/health/${n}`) ?? 0
  const checking = (n: number) => [...sockets.get(`/health/${n}`) ?? []].some(s => !s.destroyed)

  t.ok(await until(() => count(0) >= 2), 'runtime 0 checks')
  // Runtime 0: a stream already flowing at the reload.
  bodies.push((await request(`${gw.url}/sse`)).body)
  await reload(1)
  // Runtime 1: a request whose response has not begun at the reload (it could still be retried).
  const held = request(`${gw.url}/held`)
  t.ok(await until(() => begin !== undefined), 'the held request reached the target')
  const retired = gw.gateway.runtime
  await reload(2)
  t.ok(await until(() => !checking(0)), 'runtime 0, whose only request had begun its response, stopped its checks at the reload')
  const kept = count(1)
  t.ok(await until(() => count(1) >= kept + 3), 'while a request may still be retried, its runtime keeps checking')
  t.ok(checking(1))
  begin?.()
  bodies.push((await held).body)
  t.same(gw.gateway.retiring.length, 2, 'both retired runtimes still hold their streams')
  t.equal(retired.inFlight, 1)
  t.ok(await until(() => !checking(1)), 'its response begun, runtime 1 stops its checks (it looks again every second)')
  const from = [count(0), count(1), count(2)]
  await new Promise(resolve => setTimeout(resolve, 500)) // 5 check intervals: a check of a stopped runtime would have come
  t.same([count(0) - (from[0] as number), count(1) - (from[1] as number)], [0, 0], 'no check from either retired runtime')
  t.ok(count(2) > (from[2] as number), 'the runtime in service checks on')
})
