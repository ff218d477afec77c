import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'

// A parser error from the upstream's response is the head's only before the head arrived: one in
// the body (a bad chunk size) was answered "the response head could not be passed on". A status
// past 599, and two Content-Lengths that differ (undici reports a length mismatch before any body),
// are heads as malformed as a four-digit status, and were answered "could not be reached". And a
// malformed head was sent again as a `reset`: the upstream had the request and answered it.

/** A raw upstream that answers every request with `response` (CRLF-joined) and closes; counts the requests. */
async function rawUpstream (response: string[]): Promise<{ url: string, requests: () => number, close: () => Promise<void> }> {
  let requests = 0
  const server: Server = createServer((socket: Socket) => {
    let head = ''
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      requests++
      socket.end(response.join('\r\n'))
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise<void>(resolve => server.close(() => resolve()))
  }
}

async function gateway (t: Test, response: string[], upstream = 'retries: false', plugins = ''): Promise<{ url: string, requests: () => number }> {
  const up = await rawUpstream(response)
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ], ${upstream} }
routes:
  - { name: r, match: { path: /* }, upstream: u${plugins} }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  return { url: gw.url, requests: up.requests }
}

const HEAD_INVALID = /response head could not be passed on/

t.test('a chunk size the parser refuses, after the head, is the body\'s: not said to be the head', async t => {
  const { url } = await gateway(t, ['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Transfer-Encoding: chunked', '', '5', 'hello', 'zz', '', ''], 'retries: false', ', plugins: { compress: {} }')
  const res = await request(`${url}/x`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.statusCode, 502, 'the head still held by the compressing stream: the gateway\'s 502')
  t.match(await res.body.json(), { error: 'bad_gateway', message: /response body could not be read as sent/ })
})

for (const [what, response] of Object.entries({
  'a status past 599': ['HTTP/1.1 600 Odd', 'Content-Length: 2', '', 'hi'],
  'two Content-Lengths that differ': ['HTTP/1.1 200 OK', 'Content-Length: 2', 'Content-Length: 3', '', 'hi']
})) {
  t.test(`${what}: 502, said to be a head that could not be passed on`, async t => {
    const { url } = await gateway(t, response)
    const res = await request(`${url}/x`)
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { error: 'bad_gateway', message: HEAD_INVALID })
  })
}

for (const [what, response] of Object.entries({
  'a four-digit status': ['HTTP/1.1 2000 OK', 'Content-Length: 2', '', 'hi'],
  'two Content-Lengths that differ': ['HTTP/1.1 200 OK', 'Content-Length: 2', 'Content-Length: 3', '', 'hi'],
  'a head over undici\'s limit': ['HTTP/1.1 200 OK', `X-Big: ${'a'.repeat(100_000)}`, 'Content-Length: 2', '', 'hi']
})) {
  t.test(`${what}, to a PUT the upstream retries on a reset: not sent again`, async t => {
    const { url, requests } = await gateway(t, response, 'retries: { attempts: 2, on: [connect-error, reset, timeout] }')
    const res = await request(`${url}/x`, { method: 'PUT', body: 'data' })
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { message: HEAD_INVALID })
    t.equal(requests(), 1, 'the upstream had it once')
  })
}
