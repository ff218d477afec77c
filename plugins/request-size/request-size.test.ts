import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { until } from '../../test/helpers/wait.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'

let requests = 0
let aborted = 0
const up = await startUpstream((req, res) => {
  requests++
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('close', () => { if (!req.complete) aborted++ })
  req.on('end', () => res.end(JSON.stringify({ length: Buffer.concat(chunks).length })))
})
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: limited
    match: { path: /* }
    upstream: up
    plugins:
      request-size: { maxBody: 1KiB, maxUrl: 64, maxHeaders: 10, maxHeaderBytes: 512 }
`, { admin: true })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** Sends `head`, then each of `parts` once the previous is written, and returns the raw answer. */
async function raw (head: string, parts: string[] = [], between: () => Promise<unknown> = async () => {}): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString() })
  socket.on('error', () => {})
  socket.write(head + '\r\n\r\n')
  for (const p of parts) { await between(); if (!socket.destroyed) socket.write(p) }
  await once(socket, 'close')
  return answer
}

t.test('Content-Length over maxBody: 413 at once, before any of the body is sent', async t => {
  const before = requests
  const answer = await raw('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000')
  t.match(answer, /^HTTP\/1.1 413 /)
  t.match(answer, /\r\nconnection: close\r\n/i)
  t.match(answer, /"error":"body_too_large","message":"the request body is larger than 1024 bytes"/)
  t.equal(requests, before, 'the upstream was not called')
})

t.test('bodies within the limit pass, with a length or chunked', async t => {
  const sized = await request(`${gw.url}/x`, { method: 'POST', body: 'a'.repeat(1024) })
  t.same(await sized.body.json(), { length: 1024 })
  const chunked = await request(`${gw.url}/x`, { method: 'POST', body: Readable.from(['a'.repeat(600), 'b'.repeat(424)]) })
  t.same(await chunked.body.json(), { length: 1024 })
})

t.test('a chunked body is cut at the limit: upstream aborted, 413 answered', async t => {
  const [before, abortedBefore] = [requests, aborted]
  const answer = await raw('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked', ['200\r\n' + 'a'.repeat(512) + '\r\n', '400\r\n' + 'b'.repeat(1024) + '\r\n'],
    () => until(() => requests > before))
  t.match(answer, /^HTTP\/1.1 413 /)
  t.match(answer, /"error":"body_too_large"/)
  t.ok(await until(() => aborted > abortedBefore), 'the upstream request was aborted')
})

t.test('a URL too long: 414; too many or too large headers: 431', async t => {
  const long = await request(`${gw.url}/${'a'.repeat(64)}`)
  t.equal(long.statusCode, 414)
  t.match(await long.body.json(), { error: 'url_too_long' })
  const ok = await request(`${gw.url}/${'a'.repeat(62)}`)
  t.equal(ok.statusCode, 200, 'a URL of exactly maxUrl bytes passes')
  await ok.body.dump()
  const many = await request(`${gw.url}/x`, { headers: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`x-h${i}`, '1'])) })
  t.equal(many.statusCode, 431)
  t.match(await many.body.json(), { error: 'headers_too_large' })
  const big = await request(`${gw.url}/x`, { headers: { 'x-big': 'v'.repeat(600) } })
  t.equal(big.statusCode, 431)
  await big.body.dump()
})

t.test('portcullis_request_size_refused_total counts each refusal by reason', async t => {
  const series = (reason: string) => `portcullis_request_size_refused_total{route="limited",reason="${reason}"}`
  const admin = gw.adminUrl as string
  // body: the Content-Length refusal and the chunked cut; url: one; headers: two (above).
  t.equal(await metricValue(admin, series('body')), 2)
  t.equal(await metricValue(admin, series('url')), 1)
  t.equal(await metricValue(admin, series('headers')), 2)
})
