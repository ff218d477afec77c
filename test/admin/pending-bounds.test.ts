import t from 'tap'
import { connect } from 'node:net'
import { ADMIN_LIMITS } from '../../src/server/admin-server.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'
import { holdGateway } from './hold-gateway.ts'

// Every reset logged: the test waits for its line.
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const RESET = 'admin connection reset: its client left an answer unread'

/** Answers made: each (status, body), as framed by Content-Length, until the server closed the connection. */
function answers (port: number, requests: string): Promise<Array<{ status: number, body: string }>> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const got: Array<{ status: number, body: string }> = []
      for (let at = 0; at < text.length;) {
        const end = text.indexOf('\r\n\r\n', at)
        if (end === -1) break
        const head = text.slice(at, end)
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0)
        got.push({ status: Number(head.split(' ')[1]), body: text.slice(end + 4, end + 4 + length) })
        at = end + 4 + length
      }
      resolve(got)
    })
    socket.write(requests)
  })
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`

// 16 pipelined GET /metrics read by no one kept their connection (and 2.85 MB queued) for as long
// as the client liked: nothing timed out a connection whose answers were made but unsent.
t.test('a client that leaves an answer unread for sendMs has its connection reset, the answers queued behind it dropped', async t => {
  const a = await namedUpstream('a')
  // GET /routes of 4,000 routes: some 560 KB, 16 of them (9 MB) more than the kernel takes for a client reading none.
  const routes = Array.from({ length: 4000 }, (_, i) => `  - { name: r${i}, match: { path: "/r${i}/*" }, upstream: a }`).join('\n')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, routes))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const port = Number(new URL(gw.adminUrl as string).port)

  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  // Not events.once: it rejects on the reset's 'error'.
  const closed = new Promise(resolve => socket.once('close', resolve))
  let received = 0
  socket.on('data', (c: Buffer) => { received += c.length })
  // Reads nothing: its receive side fills, then the kernel's, then the process holds the rest.
  socket.pause()
  const sent = performance.now()
  socket.write(get('/routes').repeat(ADMIN_LIMITS.pipelined))
  const line = await waitForLog(gw.logs, { msg: RESET }, ADMIN_LIMITS.sendMs + 15_000)
  t.match(line, { level: 40, clientIp: '127.0.0.1', sendMs: ADMIN_LIMITS.sendMs }, 'the reset logged')
  t.ok(performance.now() - sent >= ADMIN_LIMITS.sendMs, 'not before sendMs')
  // Read now: what the kernel held, then the reset.
  socket.resume()
  await closed
  const one = await rawRequest(port, ['GET /routes HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])
  const whole = one.head.length + 4 + one.body.length
  t.ok(received < ADMIN_LIMITS.pipelined * whole, 'the answers behind the one unread were never sent')
  t.equal((await rawRequest(port, ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])).status, 200, 'the listener serves on')
})

// 250 connections each pipelining 20 unread GET /metrics held 492 MB, and 256 x 16 renders kept the
// event loop 40 s from answering a probe: the bound per connection held nothing over the listener.
t.test('answers pending over the whole listener are bounded: past it a request gets 503 and its connection ends; a probe is still answered', async t => {
  const { gw, port, held } = await holdGateway(t)

  // The listener's bound reached by connections within their own: each pipelines its 16.
  const connections = ADMIN_LIMITS.pending / ADMIN_LIMITS.pipelined
  const holding = Array.from({ length: connections }, () => answers(port, get('/plugins/holdp/held').repeat(ADMIN_LIMITS.pipelined - 1) + get('/plugins/holdp/held', 'Connection: close\r\n')))
  t.ok(await until(() => held.calls === ADMIN_LIMITS.pending, 10_000), `${ADMIN_LIMITS.pending} answers pending`)

  const busy = await rawRequest(port, ['GET /plugins/holdp/held HTTP/1.1', 'Host: 127.0.0.1', 'Connection: keep-alive'])
  t.equal(busy.status, 503)
  t.match(JSON.parse(busy.body), { error: 'admin_busy' })
  t.match(busy.head, /\r\nconnection: close\r\n/i, 'its connection ends')
  t.match(gw.logs.find(l => l.msg === 'admin request refused'), { status: 503, error: 'admin_busy', path: '/plugins/holdp/held' }, 'the refusal logged')
  t.equal((await rawRequest(port, ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])).status, 200, 'a probe is answered')
  // What a refused connection sent after its refusal is refused too, a probe as well: nothing more runs on it.
  t.same((await answers(port, get('/plugins/holdp/held') + get('/healthz', 'Connection: close\r\n'))).map(r => r.status), [503])
  t.equal(held.calls, ADMIN_LIMITS.pending, 'the refused requests reached no endpoint')

  held.release()
  for (const statuses of await Promise.all(holding)) t.same(statuses.map(r => r.status), Array<number>(ADMIN_LIMITS.pipelined).fill(200))
  t.equal((await rawRequest(port, ['GET /routes HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])).status, 200, 'answers sent count no more')
})

// 256 connections x 16 GET /metrics rendered 4,096 expositions (~10 ms each): the event loop was busy 40 s.
t.test('scrapes that come together share one render', async t => {
  // With the process's metrics (startFromFile's gateway has none): its CPU time moves on between renders.
  const gw = await startGateway(catchAllYaml('http://127.0.0.1:1'), { admin: true })
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.adminUrl as string).port)

  for (const accept of ['', 'Accept: application/openmetrics-text\r\n']) {
    const together = await answers(port, get('/metrics', accept).repeat(ADMIN_LIMITS.pipelined - 1) + get('/metrics', accept + 'Connection: close\r\n'))
    t.same(together.map(r => r.status), Array<number>(ADMIN_LIMITS.pipelined).fill(200))
    t.equal(new Set(together.map(r => r.body)).size, 1, `${accept === '' ? 'Prometheus text' : 'OpenMetrics'}: one render for ${ADMIN_LIMITS.pipelined} scrapes`)
    // A render made later differs (the process's CPU time has moved on): one render each would too.
    const later = await answers(port, get('/metrics', accept + 'Connection: close\r\n'))
    t.not(later[0]?.body, together[0]?.body, 'a later scrape renders anew')
  }
})
