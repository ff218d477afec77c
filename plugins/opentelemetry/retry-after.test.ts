import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { until } from '../../test/helpers/wait.ts'
import { pauseOf, retryAfterMs, throttled } from './throttling.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const ok = await startUpstream((req, res) => { req.resume(); res.end('ok') })
t.teardown(() => ok.close())

// A collector throttling every export (OTLP's throttling: 429 or 503 with Retry-After), noting when each came.
async function throttlingCollector (status: number, retryAfter: () => string | undefined) {
  const posts: number[] = []
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      posts.push(performance.now())
      const value = retryAfter()
      res.writeHead(status, { ...(value === undefined ? {} : { 'retry-after': value }), 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    posts,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

/** A gateway exporting to `collector` (its settings and `settings`), with the route `items` and `routes`. */
const exporting = (collector: { url: string }, settings = '', routes = '', options?: Parameters<typeof startGateway>[1]) => startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${collector.url}", flushInterval: 50ms${settings} }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
${routes}`, options)

/** Requests to each of `paths` all along, so that a batch is ready at every flush; `stop()` ends them. */
function load (gw: { url: string }, paths: () => string[]) {
  let sending = true
  const clients = (async () => {
    while (sending) await Promise.all(paths().map(async path => { await (await request(`${gw.url}${path}`)).body.dump() }))
  })()
  return async () => { sending = false; await clients }
}

for (const [status, form, retryAfter] of [
  [429, 'delta-seconds', () => '2'],
  // An HTTP-date has whole seconds: 3 s ahead is over 2 s ahead.
  [503, 'HTTP-date', () => new Date(Date.now() + 3_000).toUTCString()]
] as const) {
  t.test(`a ${status} with Retry-After (${form}) stops exports for that long: batches dropped meanwhile, and the warning says when sending resumes`, async t => {
    const collector = await throttlingCollector(status, retryAfter)
    const gw = await exporting(collector, ', timeout: 5s, maxQueueSize: 50, maxBatchSize: 10', '', { admin: true })
    const stop = load(gw, () => ['/items'])
    t.teardown(async () => { await stop(); await gw.close(); await collector.close() })

    t.ok(await until(() => collector.posts.length >= 1), 'a first export')
    const first = collector.posts[0] as number
    t.notOk(await until(() => collector.posts.length >= 2, first + 1_500 - performance.now()), 'no export for the Retry-After: none within 1.5 s of the first')
    t.ok(await until(() => collector.posts.length >= 2, 5_000), 'an export again after it')
    t.ok((collector.posts[1] as number) - first >= 1_500, `the next export ${Math.round((collector.posts[1] as number) - first)} ms after the first`)

    t.ok(await metricValue(gw.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="dropped"}') > 0, 'batches meanwhile counted dropped')
    const line = await waitForLog(gw.logs, { plugin: 'opentelemetry', level: 40 })
    t.match(line, { msg: /^span export failed: .*sending resumes at /, status })
  })
}

// `Retry-After: 0`, `-5` or a past date gave no pause at all: the SDK's retries then the next batch hit the collector at once.
t.test('a Retry-After asking for no wait, or not one, leaves the wait to the doubling backoff', async t => {
  for (const value of ['0', '-5', '1.5', 'abc 12', 'Thu, 01 Jan 1970 00:00:00 GMT', 'garbage', undefined]) t.equal(retryAfterMs(value), undefined, String(value))
  t.equal(retryAfterMs('2'), 2000)
  const ahead = retryAfterMs(new Date(Date.now() + 10_000).toUTCString())
  t.ok(ahead !== undefined && ahead > 8_000 && ahead <= 10_000, `an HTTP-date 10 s ahead: ${ahead}`)
})

const gap = (posts: number[], i: number) => Math.round((posts[i] as number) - (posts[i - 1] as number))

// With the default timeout (10 s) the SDK's own retries (up to 5 in one export) went out: 6 POSTs
// within 15 ms when the Retry-After asked for no wait, every second or so without one.
for (const [form, retryAfter] of [
  ['0', () => '0'],
  ['-5', () => '-5'],
  ['a past date', () => 'Thu, 01 Jan 1970 00:00:00 GMT'],
  ['309 digits', () => '9'.repeat(309)],
  ['none', () => undefined]
] as const) {
  t.test(`the default timeout, a 429 with Retry-After ${form}: one POST per wait, the SDK's retries not sent`, async t => {
    const collector = await throttlingCollector(429, retryAfter)
    const gw = await exporting(collector)
    const stop = load(gw, () => ['/items'])
    t.teardown(async () => { await stop(); await gw.close(); await collector.close() })
    t.ok(await until(() => collector.posts.length >= 1), 'a first export')
    const first = collector.posts[0] as number
    t.notOk(await until(() => collector.posts.length >= 2, first + 900 - performance.now()), 'none within the first wait (1 s, or 60 s for 309 digits)')
    if (form !== 'none') return
    // The backoff doubles: 1 s, then 2 s.
    t.ok(await until(() => collector.posts.length >= 3, 5_000), 'a POST after each wait')
    t.ok(gap(collector.posts, 1) >= 1_000 && gap(collector.posts, 2) >= 2_000, `POSTs ${gap(collector.posts, 1)} then ${gap(collector.posts, 2)} ms apart`)
  })
}

// Each pipeline (a route with its own settings) and each config (after a reload) kept its own wait:
// the other route's exports, and the new config's, went to a collector that had asked for 30 s.
t.test('the wait is the endpoint\'s: every pipeline to it honours it, across a reload', async t => {
  const collector = await throttlingCollector(429, () => '30')
  const gw = await exporting(collector, '', `  - { name: other, match: { path: /other }, upstream: ok, plugins: { opentelemetry: { endpoint: "${collector.url}", flushInterval: 50ms, serviceName: other } } }\n`)
  // Only `items` until its export was throttled: the two pipelines' first exports may otherwise cross.
  let paths = ['/items']
  const stop = load(gw, () => paths)
  t.teardown(async () => { await stop(); await gw.close(); await collector.close() })
  t.ok(await until(() => collector.posts.length >= 1), 'a first export')
  t.ok(await waitForLog(gw.logs, { plugin: 'opentelemetry', level: 40 }), 'throttled')
  paths = ['/items', '/other']
  t.notOk(await until(() => collector.posts.length >= 2, 1_000), 'the other pipeline sends nothing either')
  await gw.apply(gw.loaded)
  t.notOk(await until(() => collector.posts.length >= 2, 1_000), 'nor the reloaded config')
  t.equal(collector.posts.length, 1)
})

// A throttled export waited in the SDK's sleep before its retry: a close then sent the queued
// batches side by side (6 POSTs) and waited for that sleep (5 s).
t.test('a close while the endpoint asks to wait sends nothing and waits for no retry', async t => {
  const collector = await throttlingCollector(429, () => '5')
  const gw = await exporting(collector)
  const stop = load(gw, () => ['/items'])
  t.teardown(async () => { await stop(); await collector.close() })
  t.ok(await until(() => collector.posts.length >= 1), 'a first export')
  t.ok(await waitForLog(gw.logs, { plugin: 'opentelemetry', level: 40 }, 3_000), 'its failure logged as the 429 came')
  await stop()
  const start = performance.now()
  await gw.close()
  t.ok(performance.now() - start < 3_000, `closed in ${Math.round(performance.now() - start)} ms`)
  t.notOk(await until(() => collector.posts.length >= 2, 500), 'no batch sent at the close')
})

// The wait ended at a Date.now(): a wall clock set back an hour refused exports for that hour.
t.test('the wait runs on a monotonic clock: a wall clock set back does not stretch it', async t => {
  const url = 'http://collector.invalid:4318/v1/traces'
  throttled(url, { status: 429, retryAfter: '1' })
  const wall = Date.now
  Date.now = () => wall() - 3_600_000
  t.teardown(() => { Date.now = wall })
  t.ok(pauseOf(url), 'paused')
  t.ok(await until(() => pauseOf(url) === undefined, 3_000), 'over after its second')
})
