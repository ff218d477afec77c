import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'

// An upstream may send a 100 (Continue) the gateway did not ask for (it never sends Expect upstream):
// a client must take it (RFC 9110 15.2). undici 7 failed the response on it ('bad response'): a 502,
// a failure counted against the target, ejected after a few.

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

/** A raw keep-alive upstream: `answer` writes the response to each request (one per read). */
async function rawUpstream (t: Test, answer: (socket: Socket) => void): Promise<string> {
  const server = createServer(socket => {
    socket.on('error', () => {})
    socket.on('data', () => answer(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function gateway (t: Test, url: string): Promise<TestGateway> {
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return gw
}

function noFailure (t: Test, gw: TestGateway): void {
  t.notOk(gw.logs.some(l => l.msg === 'upstream request failed'), 'no upstream failure logged')
}

t.test('a 100 before the final response, in the same read: dropped, every request answered (more than ejection takes)', async t => {
  const gw = await gateway(t, await rawUpstream(t, s => s.write(`${CONTINUE}HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok`)))
  for (let i = 0; i < 8; i++) {
    const res = await request(`${gw.url}/x`, { method: i % 2 === 0 ? 'POST' : 'GET', body: i % 2 === 0 ? 'data' : undefined })
    t.equal(res.statusCode, 201, `request ${i + 1}`)
    t.equal(await res.body.text(), 'ok')
  }
  noFailure(t, gw)
})

t.test('two 100s, then the response in a later write: dropped', async t => {
  const gw = await gateway(t, await rawUpstream(t, s => {
    s.write(CONTINUE + CONTINUE)
    setImmediate(() => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'))
  }))
  for (let i = 0; i < 3; i++) {
    const res = await request(`${gw.url}/x`, { method: 'POST', body: 'data' })
    t.equal(res.statusCode, 200, `request ${i + 1}`)
    t.equal(await res.body.text(), 'ok')
  }
  noFailure(t, gw)
})

t.test('a body that starts with the text of a 100, in a write of its own: kept whole', async t => {
  const body = `${CONTINUE}HTTP/1.1 200 OK\r\n\r\n`
  const gw = await gateway(t, await rawUpstream(t, s => {
    s.write(`HTTP/1.1 200 OK\r\ncontent-type: message/http\r\ncontent-length: ${body.length}\r\n\r\n`)
    setImmediate(() => s.write(body))
  }))
  for (let i = 0; i < 3; i++) {
    const res = await request(`${gw.url}/x`)
    t.equal(res.statusCode, 200)
    t.equal(await res.body.text(), body, `request ${i + 1}: the body as sent`)
  }
  noFailure(t, gw)
})

const BODY = 'evil\r\nset-cookie: session=attacker\r\n\r\n'

t.test('a head cut across reads whose next part reads "HTTP/1.1 100 ...": part of the head, never dropped (body bytes never become headers)', async t => {
  const gw = await gateway(t, await rawUpstream(t, s => {
    s.write('HTTP/1.1 200 OK\r\nx-reflect: ')
    // The rest a moment later, in a read of its own: a header value that looks like a 100.
    setTimeout(() => s.write(`HTTP/1.1 100 foo\r\ncontent-length: ${BODY.length}\r\n\r\n${BODY}`), 50)
  }))
  const res = await request(`${gw.url}/x`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-reflect'], 'HTTP/1.1 100 foo', 'the header as sent')
  t.equal(res.headers['set-cookie'], undefined, 'nothing of the body is read as a header')
  t.equal(await res.body.text(), BODY, 'the body whole')
  noFailure(t, gw)
})
