import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { connect as connectHttp2, createServer as createHttp2Server, type Http2ServerRequest } from 'node:http2'
import { BodyRateWatch } from '../../src/proxy/body-rate.ts'
import { until } from '../helpers/wait.ts'

// Whether a watch fires is checked against other watches due before or after it (timers run in
// the order they are due), not by measuring times; the byte test only assumes 60 bytes cross
// loopback within its 400 ms grace.

/** A real request whose body (Content-Length: 1000) has not arrived, as the server sees it; `client` is the client's socket. */
async function waitingBody (t: Test, body = ''): Promise<IncomingMessage & { client: Socket }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy(); server.close() })
  socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body === '' ? 1000 : body.length}\r\n\r\n${body}`)
  const [req] = await once(server, 'request') as [IncomingMessage]
  return Object.assign(req, { client: socket })
}

const fired = (req: IncomingMessage, graceMs: number) => new Promise<void>(resolve => { new BodyRateWatch(req, graceMs, 1000, resolve) })

t.test('a body that stops arriving is too slow once the grace is over', async t => {
  const req = await waitingBody(t)
  await fired(req, 20)
  t.pass('too slow')
})

t.test('a stopped watch never fires', async t => {
  const req = await waitingBody(t)
  let stoppedFired = false
  new BodyRateWatch(req, 0, 1000, () => { stoppedFired = true }).stop()
  await fired(req, 0)
  t.equal(stoppedFired, false)
})

t.test('a body read whole, or a request destroyed, is never too slow', async t => {
  const whole = await waitingBody(t, 'abc')
  whole.resume()
  await once(whole, 'end')
  const destroyed = await waitingBody(t)
  destroyed.destroy()
  const control = await waitingBody(t)
  let wrongly = ''
  new BodyRateWatch(whole, 0, 1000, () => { wrongly += 'whole ' })
  new BodyRateWatch(destroyed, 0, 1000, () => { wrongly += 'destroyed' })
  await fired(control, 0)
  t.equal(wrongly, '')
})

t.test('time the body is held back (paused) is not counted; once let go, the grace runs again', async t => {
  const held = await waitingBody(t)
  const [control, after] = [await waitingBody(t), await waitingBody(t)]
  held.pause()
  let heldFired = false
  new BodyRateWatch(held, 20, 1000, () => { heldFired = true })
  await fired(control, 20)
  t.equal(heldFired, false, 'not cut off while held back')
  held.resume()
  t.equal(await fired(after, 200).then(() => heldFired), true, 'cut off once let go')
})

t.test('each byte received moves the deadline by 1/rate s, checked again at the deadline', async t => {
  const req = await waitingBody(t)
  const [early, late] = [await waitingBody(t), await waitingBody(t)]
  let done = false
  // 400 ms plus 60 bytes at 100 bytes/s: cut off at 1 s, between the controls' 700 ms and 1,200 ms.
  new BodyRateWatch(req, 400, 100, () => { done = true })
  req.client.write('x'.repeat(60))
  const [earlyFired, lateFired] = [fired(early, 700).then(() => done), fired(late, 1200).then(() => done)]
  t.equal(await earlyFired, false, 'not cut off before its deadline')
  t.equal(await lateFired, true, 'cut off before a watch due 200 ms after its deadline')
})

t.test('over HTTP/2, only the request\'s own stream counts: a busy stream beside it on the connection does not keep it alive', async t => {
  const server = createHttp2Server()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const session = connectHttp2(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => { session.destroy(); server.close() })
  const requests: Http2ServerRequest[] = []
  server.on('request', (req: Http2ServerRequest) => requests.push(req))
  const slow = session.request({ ':method': 'POST', ':path': '/slow' })
  slow.write('x')
  slow.on('error', () => {})
  await until(() => requests.length === 1)
  const slowReq = requests[0] as Http2ServerRequest
  const control = await waitingBody(t)
  let done = false
  // 300 ms plus 1 byte at 1,000 bytes/s: cut off at about 301 ms. Counting the connection's bytes, the
  // 200 kB of the other stream would move that to 200 s, after the control watch due at 1,200 ms.
  new BodyRateWatch(slowReq as unknown as IncomingMessage, 300, 1000, () => { done = true })
  slowReq.resume()
  const busy = session.request({ ':method': 'POST', ':path': '/busy' })
  busy.on('error', () => {})
  busy.end(Buffer.alloc(200_000, 'y'))
  await until(() => requests.length === 2)
  const busyReq = requests[1] as Http2ServerRequest
  busyReq.resume()
  await once(busyReq, 'end')
  t.equal(await fired(control, 1200).then(() => done), true, 'the slow stream is cut off before the control watch')
})
