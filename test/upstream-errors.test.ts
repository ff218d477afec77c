import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { catchAllGateway } from './helpers/catch-all.ts'
import { deadPort } from './helpers/upstream.ts'
import { waitForLog } from './helpers/logs.ts'
import { until } from './helpers/wait.ts'

t.test('connection refused: 502 JSON and a log line', async t => {
  const gw = await catchAllGateway(t, `http://127.0.0.1:${await deadPort()}`)
  const res = await request(`${gw.url}/x`)
  t.equal(res.statusCode, 502, 'status')
  t.match(res.headers['content-type'], /^application\/json/)
  const id = res.headers['x-request-id']
  const body = await res.body.json() as Record<string, unknown>
  t.match(body, { error: 'bad_gateway', message: /./, requestId: id }, 'error body carries the request id')
  t.same(Object.keys(body).sort(), ['error', 'message', 'requestId'], 'and nothing else')
  t.match(await waitForLog(gw.logs, { msg: 'upstream request failed' }), { level: 40, requestId: id, err: { code: 'ECONNREFUSED' } })
  t.match(await waitForLog(gw.logs, { msg: 'request' }), { status: 502, requestId: id })
})

t.test('upstream failures go through the response phase: plugin headers reach the client with the 502/504', async t => {
  const plugins = '    plugins: { response-headers: { set: { access-control-allow-origin: "*" } } }'
  const refused = await catchAllGateway(t, `http://127.0.0.1:${await deadPort()}`, { route: plugins })
  const res = await request(`${refused.url}/x`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['access-control-allow-origin'], '*', 'the response plugin ran')
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(await res.body.json(), { error: 'bad_gateway', requestId: res.headers['x-request-id'] })
  t.match(await waitForLog(refused.logs, { msg: 'request' }), { status: 502 })

  const silent = await catchAllGateway(t, () => {}, { route: `${plugins}\n    timeouts: { response: 200ms }` })
  const late = await request(`${silent.url}/x`)
  t.equal(late.statusCode, 504)
  t.equal(late.headers['access-control-allow-origin'], '*')
  t.match(await late.body.json(), { error: 'gateway_timeout' })
})

t.test('an upstream that never answers: 504 JSON after timeouts.response', async t => {
  const gw = await catchAllGateway(t, () => {}, { route: '    timeouts: { response: 300ms }' })
  const started = performance.now()
  const res = await request(`${gw.url}/slow`)
  const elapsed = performance.now() - started
  t.equal(res.statusCode, 504, 'status')
  t.match(await res.body.json(), { error: 'gateway_timeout', requestId: res.headers['x-request-id'] })
  t.ok(elapsed >= 250 && elapsed < 5_000, `answered after ${Math.round(elapsed)} ms`)
})

for (const framing of ['content-length', 'chunked'] as const) {
  t.test(`an upstream reset mid-body (${framing}) cuts the client's connection`, async t => {
    const gw = await catchAllGateway(t, (req, res) => {
      if (framing === 'content-length') res.setHeader('content-length', 1_000_000)
      res.write('x'.repeat(1000), () => setTimeout(() => req.socket.resetAndDestroy(), 50))
    })
    // A hang would show up as this client's body timeout instead of a socket error.
    const res = await request(`${gw.url}/reset`, { bodyTimeout: 5_000 })
    t.equal(res.statusCode, 200, 'headers had already been sent')
    const err = await res.body.text().then(() => undefined, (e: Error & { code?: string }) => e)
    t.ok(err, 'reading the body fails: a truncated body is never passed off as complete')
    t.not(err?.code, 'UND_ERR_BODY_TIMEOUT', `the connection was cut, not left hanging (${err?.message})`)
  })
}

t.test('a client aborting mid-response aborts the upstream request', async t => {
  let upstreamClosed = false
  const gw = await catchAllGateway(t, (_req, res) => {
    res.on('close', () => { upstreamClosed = true })
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first chunk')
  })
  const controller = new AbortController()
  const res = await request(`${gw.url}/stream`, { signal: controller.signal })
  await once(res.body, 'data')
  controller.abort()
  t.ok(await until(() => upstreamClosed), 'the upstream saw its response closed')
  t.match(await waitForLog(gw.logs, { msg: 'request' }), { status: 499 }, 'logged as closed by the client')
})
