import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { ADMIN_LIMITS } from '../../src/server/admin-server.ts'
import { rawThenAgain } from '../helpers/raw-http.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile, type FileGateway } from '../reload/helpers.ts'

const TOKEN = 'correct-horse-battery-staple'

/** A gateway with an admin listener (with `admin.token` when `token`); its admin port. */
async function adminOf (t: Test, token: boolean): Promise<{ gw: FileGateway, port: number }> {
  const a = await namedUpstream('a')
  const yaml = gatewayYaml({ a: [a.url] }, '  - { name: all, match: { path: "/*" }, upstream: a }')
  const cf = await configFile(token ? yaml.replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: ${TOKEN}`) : yaml)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  return { gw, port: Number(new URL(gw.adminUrl as string).port) }
}

/** A connection that sent `text` and keeps its side open: what it received, and when the admin listener ended it. */
interface Held { readonly socket: Socket, received (): string, readonly ended: Promise<string> }

function hold (port: number, text: string): Held {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (c: string) => { received += c })
  socket.on('error', () => {})
  const ended = new Promise<string>(resolve => socket.once('close', () => resolve(received)))
  socket.write(text)
  return { socket, received: () => received, ended }
}

/** `held.ended`, or 'kept' when the connection is still open after `ms`. */
async function endedWithin (held: Held, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const kept = new Promise<string>(resolve => { timer = setTimeout(() => resolve('kept'), ms) })
  const result = await Promise.race([held.ended, kept])
  clearTimeout(timer)
  held.socket.destroy()
  return result
}

// Well under the request timeout: these connections must end on their answer, not on a timer.
const AT_ONCE_MS = ADMIN_LIMITS.requestMs * 2 / 3

t.test('a refusal sent before the body is in ends the connection; the rest of the body is not awaited', async t => {
  const { port } = await adminOf(t, true)
  const head = (lines: string[]) => lines.join('\r\n') + '\r\n\r\n'

  // The probes are open to GET and HEAD only: a POST needs the token, and is refused before its body is read.
  const post = hold(port, head(['POST /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Content-Length: 10']) + '{')
  const chunked = hold(port, head(['POST /config HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Transfer-Encoding: chunked']) + '1\r\n{\r\n')
  const huge = hold(port, head(['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Content-Length: 1000000000']) + 'x'.repeat(1024))
  // An open probe answered without reading its body: the rest is not read either.
  const probe = hold(port, head(['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Content-Length: 10']) + '{')
  // A client trickling its body after the answer does not keep the connection.
  const trickle = setInterval(() => { if (chunked.socket.writable) chunked.socket.write('1\r\n \r\n') }, 200)
  t.teardown(() => clearInterval(trickle))

  for (const [name, held, status] of [['POST /healthz', post, 401], ['chunked', chunked, 401], ['1 GB declared', huge, 401], ['GET /healthz with a body', probe, 200]] as const) {
    const text = await endedWithin(held, AT_ONCE_MS)
    t.not(text, 'kept', `${name}: the connection is ended after the answer`)
    t.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: answered ${status}`)
    t.match(text, /\r\nconnection: close\r\n/i, `${name}: the answer says so`)
  }

  // A request without a body keeps its connection, a refused one too.
  for (const lines of [['GET /healthz HTTP/1.1', 'Host: 127.0.0.1'], ['GET /config HTTP/1.1', 'Host: 127.0.0.1']]) {
    const { first, second } = await rawThenAgain(port, lines, '', ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])
    t.not(second, 'closed', `${lines[0] as string} (${first.status}): the connection is kept`)
  }
  // With the token, a POST to a probe is 405, as any method it does not take.
  const withToken = await rawThenAgain(port, ['POST /healthz HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', 'Content-Length: 2'], '{}', ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])
  t.equal(withToken.first.status, 405)
})

t.test('a request head or body that does not come in time is answered 408, and its connection ended', async t => {
  const { gw, port } = await adminOf(t, false)
  // No token: a POST is served, its body awaited, but not for long.
  const body = hold(port, 'POST /config/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{')
  const partialHead = hold(port, 'GET /config HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  const started = performance.now()
  // Node's checks run every second; the margins are for a loaded machine.
  const [headText, bodyText] = await Promise.all([endedWithin(partialHead, ADMIN_LIMITS.headersMs + 15_000), endedWithin(body, ADMIN_LIMITS.requestMs + 30_000)])
  t.match(headText, /^HTTP\/1\.1 408 .*"error":"request_timeout","message":"the request headers took too long to arrive"/s, 'a partial head: 408')
  // Node's one timeout error for both limits was answered as the head's.
  t.match(bodyText, /^HTTP\/1\.1 408 .*"error":"request_timeout","message":"the request body did not arrive in time"/s, 'a body that does not come: 408, saying so')
  t.ok(performance.now() - started >= ADMIN_LIMITS.requestMs - 1_000, 'not before the request timeout')
  t.same(gw.logs.filter(l => Number(l.level) >= 50), [], 'a client too slow is no error of the gateway\'s')
})

t.test(`at most ${ADMIN_LIMITS.maxConnections} admin connections: past them, new ones are closed on accept, with a warning`, async t => {
  const { gw, port } = await adminOf(t, false)
  const server = gw.admin?.server
  if (server === undefined) throw new Error('no admin listener')
  const open = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => { if (err !== null) reject(err); else resolve(n) }))
  // Idle connections (nothing sent): the headers timeout would close them, so the test is done well before.
  const idle: Held[] = []
  t.teardown(() => { for (const h of idle) h.socket.destroy() })
  for (let i = 0; i < ADMIN_LIMITS.maxConnections; i++) idle.push(hold(port, ''))
  let n = 0
  t.ok(await until(() => { void open().then(c => { n = c }); return n === ADMIN_LIMITS.maxConnections }, ADMIN_LIMITS.headersMs / 2), 'all accepted')

  const refused = hold(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
  t.equal(await endedWithin(refused, ADMIN_LIMITS.headersMs / 2), '', 'one more is closed unanswered')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'admin connection limit reached: new admin connections are closed')), 'and logged')

  idle.pop()?.socket.destroy()
  t.ok(await until(() => { void open().then(c => { n = c }); return n < ADMIN_LIMITS.maxConnections }, ADMIN_LIMITS.headersMs / 2), 'one closed')
  const served = hold(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
  t.match(await endedWithin(served, ADMIN_LIMITS.headersMs / 2), /^HTTP\/1\.1 200 /, 'once one closes, a new one is served')
})
