import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { until } from '../../test/helpers/wait.ts'

// A collector that answers 200 and its head at once, then trickles a space every 100 ms and never
// ends: the SDK's own timeout (a socket idle timer) never fires. The plugin's `timeout` must end
// each export all the same, and close its connection.
async function startTricklingCollector () {
  const sockets = new Set<Socket>()
  let received = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      received++
      res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders()
      const trickle = setInterval(() => res.write(' '), 100)
      res.on('close', () => { clearInterval(trickle) })
    })
  })
  server.on('connection', (socket: Socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    received: () => received,
    open: () => sockets.size,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

const TIMEOUT = 500
const collector = await startTricklingCollector()
const ok = await startUpstream((_req, res) => { res.writeHead(200).end('ok') })
t.teardown(async () => { await ok.close(); await collector.close() })

const FAILED = 'portcullis_opentelemetry_spans_total{result="failed"}'
/** The series' value once it reaches `expected` (or its last value after a few seconds). */
async function metricReaches (gw: TestGateway, series: string, expected: number): Promise<number> {
  let v = await metricValue(gw.adminUrl as string, series)
  for (const start = performance.now(); v < expected && performance.now() - start < 5_000; v = await metricValue(gw.adminUrl as string, series)) {
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return v
}
const get = async (gw: TestGateway, path: string) => { await (await request(`${gw.url}${path}`)).body.dump() }
const requestsLogged = (gw: TestGateway, n: number) => until(() => gw.logs.filter(l => l.msg === 'request').length === n)
const disposeTrouble = (gw: TestGateway) => gw.logs.filter(l => String(l.msg).startsWith('plugin dispose'))

t.test('an export the collector trickles its answer to ends at timeout: counted failed, logged, its connection closed', async t => {
  const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${collector.url}", flushInterval: 1h, maxBatchSize: 2, timeout: ${TIMEOUT}ms }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`, { admin: true })
  t.teardown(() => gw.close())
  const before = collector.received()
  await get(gw, '/items')
  // Its two spans in one export, a full batch, sent at once (with a short flushInterval, spans ending
  // further apart on a loaded machine would go in two exports, the second once the first had failed).
  t.ok(await until(() => collector.received() === before + 1), 'the export reached the collector')
  const reached = performance.now()
  t.equal(await metricReaches(gw, FAILED, 2), 2, 'its two spans are counted failed')
  // Not ended by the timeout, it would never end (metricReaches gives up after 5 s).
  t.ok(performance.now() - reached < TIMEOUT + 2_500, 'at about the timeout')
  t.ok(gw.logs.some(l => String(l.msg).startsWith('span export failed') && String((l.err as { message?: string } | undefined)?.message).includes('timed out')), 'the failure is logged')
  t.ok(await until(() => collector.open() === 0, 2_000), 'its connection is closed')
})

t.test('closing the gateway while the collector trickles: the queued spans are sent, and it is over within the timeout, no connection left', async t => {
  const gw = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 5s
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${collector.url}", flushInterval: 1h, maxBatchSize: 2, timeout: ${TIMEOUT}ms }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`)
  const before = collector.received()
  // A full batch goes at once: its export trickles; the next request's spans wait in the queue.
  await get(gw, '/items')
  t.ok(await until(() => collector.received() === before + 1), 'an export under way')
  await get(gw, '/items')
  t.ok(await requestsLogged(gw, 2))
  const start = performance.now()
  await gw.close()
  // Left to run, the dispose would take pluginTimeout (5 s).
  t.ok(performance.now() - start < TIMEOUT + 2_500, 'closed at about the timeout')
  t.equal(collector.received(), before + 2, 'the queued batch was sent')
  t.ok(await until(() => collector.open() === 0, 2_000), 'no connection left at the collector')
  t.same(disposeTrouble(gw), [], 'the dispose neither failed nor was left behind')
})

t.test('a reload while the collector trickles: the old config\'s exports end at the timeout, their connections closed', async t => {
  const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${collector.url}", flushInterval: 1h, timeout: ${TIMEOUT}ms }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`, { admin: true })
  t.teardown(() => gw.close())
  const before = collector.received()
  const failedBefore = await metricValue(gw.adminUrl as string, FAILED)
  for (let i = 0; i < 3; i++) await get(gw, '/items')
  t.ok(await requestsLogged(gw, 3))
  await gw.apply(gw.loaded)
  t.ok(await until(() => collector.received() === before + 1), 'the queued spans were sent as the old config was disposed')
  t.equal(await metricReaches(gw, FAILED, failedBefore + 6), failedBefore + 6, 'and counted failed')
  t.ok(await until(() => collector.open() === 0, 2_000), 'no connection left at the collector')
  t.same(disposeTrouble(gw), [], 'the dispose neither failed nor was left behind')
})

// A collector that takes every export and never answers, and counts how many it holds at once.
async function startSilentCollector () {
  let received = 0
  let open = 0
  let mostAtOnce = 0
  const server = createServer((req, res) => {
    received++
    mostAtOnce = Math.max(mostAtOnce, ++open)
    res.on('close', () => { open-- })
    req.resume()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    received: () => received,
    mostAtOnce: () => mostAtOnce,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

t.test('a collector that never answers gets one export at a time: the batches ready meanwhile are dropped, counted', async t => {
  const silent = await startSilentCollector()
  // A queue that never fills: every span dropped is one refused while an export was under way.
  const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${silent.url}", flushInterval: 10ms, maxBatchSize: 20, maxQueueSize: 1000000, timeout: 200ms }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`, { admin: true })
  t.teardown(async () => { await gw.close(); await silent.close() })
  // Requests all along: full batches wait each time an export fails (before the fix, each failure
  // left one more export running beside the others).
  let loading = true
  const client = async () => { while (loading) await get(gw, '/items') }
  const clients = Array.from({ length: 4 }, client)
  t.ok(await until(() => silent.received() >= 8, 30_000), 'exports go on failing')
  loading = false
  await Promise.all(clients)
  t.equal(silent.mostAtOnce(), 1, 'never more than one export at the collector')
  t.ok(await metricValue(gw.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="dropped"}') > 0, 'the spans not sent are counted dropped')
})
