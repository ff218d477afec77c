import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { until } from '../../test/helpers/wait.ts'
import { retryAfterMs } from './export-accounting.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const ok = await startUpstream((req, res) => { req.resume(); res.end('ok') })
t.teardown(() => ok.close())

// A collector throttling every export (OTLP's throttling: 429 or 503 with Retry-After), noting when each came.
async function throttlingCollector (status: number, retryAfter: () => string) {
  const posts: number[] = []
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      posts.push(performance.now())
      res.writeHead(status, { 'retry-after': retryAfter(), 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    posts,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

for (const [status, form, retryAfter] of [
  [429, 'delta-seconds', () => '2'],
  // An HTTP-date has whole seconds: 3 s ahead is over 2 s ahead.
  [503, 'HTTP-date', () => new Date(Date.now() + 3_000).toUTCString()]
] as const) {
  t.test(`a ${status} with Retry-After (${form}) stops exports for that long: batches dropped meanwhile, and the warning says when sending resumes`, async t => {
    const collector = await throttlingCollector(status, retryAfter)
    const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${collector.url}", flushInterval: 50ms, timeout: 500ms, maxQueueSize: 50, maxBatchSize: 10 }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`, { admin: true })
    // Requests all along, so that a batch is ready at every flush.
    let sending = true
    const load = (async () => {
      while (sending) await (await request(`${gw.url}/items`)).body.dump()
    })()
    t.teardown(async () => {
      sending = false
      await load
      await gw.close()
      await collector.close()
    })

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
