import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { catchAllGateway } from '../helpers/catch-all.ts'
import { waitForLog } from '../helpers/logs.ts'

// Issue 15, item 4: `response` counts from the end of the request body, not its start; a broken
// upstream body is logged as such, not as 499 (client left).

/** Sends a chunked POST whose 3 chunks come `gapMs` apart; resolves with the status line. */
async function slowUpload (url: string, gapMs: number): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write('POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n')
  for (let i = 0; i < 3; i++) { socket.write('1\r\na\r\n'); await new Promise(resolve => setTimeout(resolve, gapMs)) }
  socket.write('0\r\n\r\n')
  await once(socket, 'close')
  return Buffer.concat(chunks).toString().split('\r\n')[0] as string
}

t.test('an upload longer than the response timeout is not a timeout', async t => {
  const gw = await catchAllGateway(t, (req, res) => { req.resume(); req.on('end', () => res.end('ok')) },
    { route: '    timeouts: { response: 300ms }' })
  t.equal(await slowUpload(gw.url, 250), 'HTTP/1.1 200 OK', 'a 750 ms upload with response: 300ms')
})

t.test('an upload longer than a response timeout of 10 s or more (the timeouts undici keeps) is not a timeout either', async t => {
  const gw = await catchAllGateway(t, (req, res) => { req.resume(); req.on('end', () => res.end('ok')) },
    { route: '    timeouts: { response: 10s }' })
  // The gateway times responses under 10 s itself; undici times these, and holds its timer while it
  // writes the body, then restarts it (client-h1.js). This holds undici to that. Its timers are coarse
  // (up to a second late): the upload outlasts the timeout by two.
  t.equal(await slowUpload(gw.url, 4_000), 'HTTP/1.1 200 OK', 'a 12 s upload with response: 10s')
})

t.test('the response timeout still fires when the upstream is slow once the body is in', async t => {
  const gw = await catchAllGateway(t, (req, res) => { req.resume(); req.on('end', () => setTimeout(() => res.end('late'), 1_500)) },
    { route: '    timeouts: { response: 300ms }' })
  t.equal(await slowUpload(gw.url, 100), 'HTTP/1.1 504 Gateway Timeout')
})

t.test('an upstream that breaks its response body is logged with error upstream_broken and the status sent, not 499', async t => {
  const gw = await catchAllGateway(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100' })
    res.write('partial')
    setTimeout(() => res.socket?.destroy(), 50)
  })
  const res = await request(`${gw.url}/broken`)
  await t.rejects(res.body.text())
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/broken' }), { status: 200, error: 'upstream_broken' })
})

t.test('a response streaming before the upload ends is not cut by the response timeout once the upload is in', async t => {
  const gw = await catchAllGateway(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first;')
    req.resume()
    req.on('end', () => {
      let n = 0
      const tick = setInterval(() => { if (++n < 6) res.write(`more${n};`); else { clearInterval(tick); res.end('last') } }, 150)
    })
  }, { route: '    timeouts: { response: 300ms }' })
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write('POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n')
  for (let i = 0; i < 3; i++) { socket.write('1\r\na\r\n'); await new Promise(resolve => setTimeout(resolve, 100)) }
  socket.write('0\r\n\r\n')
  await once(socket, 'close')
  const text = Buffer.concat(chunks).toString()
  t.match(text, /^HTTP\/1\.1 200 OK/)
  t.match(text, /more5;/, 'streamed on well past the response timeout after the upload')
  t.match(text, /last\r\n0\r\n\r\n$/, 'and ended whole')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/upload' }), { status: 200, error: undefined })
})
