import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { catchAllGateway } from './helpers/catch-all.ts'
import { deadPort } from './helpers/upstream.ts'
import { startRawUpstream } from './helpers/raw-http.ts'
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

// RFC 9110 8.6: a 304 may carry the Content-Length of the 200 it stands for; neither it nor a 204
// has a body. undici fails such a response once it ends (it exempts HEAD only): it must reach the
// client whole all the same, through response plugins too (their head is written later).
for (const route of ['', '    plugins: { response-headers: { set: { x-seen: "yes" } } }']) {
  t.test(`a 204 or 304 with a Content-Length reaches the client whole${route === '' ? '' : ' (response plugins)'}`, async t => {
    for (const [status, response] of [[304, ['HTTP/1.1 304 Not Modified', 'ETag: "a"', 'Content-Length: 1234', '', '']], [204, ['HTTP/1.1 204 No Content', 'Content-Length: 5', '', 'hello']]] as const) {
      const up = await startRawUpstream([...response])
      t.teardown(() => up.close())
      const gw = await catchAllGateway(t, up.url, { route })
      for (let i = 0; i < 2; i++) { // the client's connection is kept, and serves the next answer
        const res = await request(`${gw.url}/x`)
        t.equal(res.statusCode, status)
        t.equal(res.headers['content-length'], undefined, 'no length: nothing follows')
        if (route !== '') t.equal(res.headers['x-seen'], 'yes', 'the response plugin ran')
        t.equal(await res.body.text(), '')
      }
      t.same(gw.logs.filter(l => (l.level as number) >= 40), [], 'no upstream failure logged')
    }
  })
}

t.test('a 304 with a Content-Length to the cache\'s revalidation serves the stored response', async t => {
  let revalidations = 0
  const gw = await catchAllGateway(t, (req, res) => {
    if (req.headers['if-none-match'] === '"a"') {
      revalidations++
      // Node's server would not send a 304's Content-Length: written as an upstream may send it.
      req.socket.write('HTTP/1.1 304 Not Modified\r\nETag: "a"\r\nCache-Control: no-cache\r\nContent-Length: 5\r\n\r\n')
      return
    }
    res.writeHead(200, { etag: '"a"', 'cache-control': 'no-cache', 'content-length': 5 }).end('hello')
  }, { route: '    plugins: { cache: {} }' })
  for (let i = 0; i < 2; i++) {
    const res = await request(`${gw.url}/x`)
    t.equal(res.statusCode, 200)
    t.equal(await res.body.text(), 'hello')
  }
  t.equal(revalidations, 1, 'the second request was revalidated')
})

// RFC 9110 15: no such status; a client treats it as a 5xx. Passed on, it would read "600 unknown".
for (const status of [600, 999]) {
  t.test(`a response with status ${status} gets a 502`, async t => {
    const up = await startRawUpstream([`HTTP/1.1 ${status} Odd`, 'Content-Length: 2', '', 'ok'])
    t.teardown(() => up.close())
    const gw = await catchAllGateway(t, up.url)
    const res = await request(`${gw.url}/x`)
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { error: 'bad_gateway', requestId: res.headers['x-request-id'] })
    t.match(await waitForLog(gw.logs, { msg: 'upstream request failed' }), { level: 40, err: { message: new RegExp(`status ${status}, outside 100-599`) } })
    t.match(await waitForLog(gw.logs, { msg: 'request' }), { status: 502 })
  })
}

// As for requests (docs/edge.md): undici takes off the chunks only, and `gzip` would reach the
// client with nothing saying how to read it.
for (const coding of ['gzip, chunked', 'gzip']) {
  t.test(`a response with Transfer-Encoding: ${coding} gets a 502`, async t => {
    const body = coding === 'gzip' ? ['', 'hello'] : ['', '5', 'hello', '0', '', '']
    const up = await startRawUpstream(['HTTP/1.1 200 OK', `Transfer-Encoding: ${coding}`, ...body])
    t.teardown(() => up.close())
    const gw = await catchAllGateway(t, up.url)
    const res = await request(`${gw.url}/x`)
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { error: 'bad_gateway', requestId: res.headers['x-request-id'] })
    t.match(await waitForLog(gw.logs, { msg: 'upstream request failed' }), { level: 40, err: { type: 'UpstreamBodyInvalid', message: new RegExp(coding) } })
  })
}
