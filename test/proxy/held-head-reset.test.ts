import t from 'tap'
import { join } from 'node:path'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// An upstream that resets its connection while a plugin's async onResponse still holds the head:
// the client's connection was closed with nothing sent, logged status 200, bytes 0,
// upstream_broken (what of the body undici handed over at the reset, paused or not, was written
// before the head). The head was never sent: the answer is the gateway's 502.
const gates = sharedWithPlugins('gates', new Map<string, { wait: Promise<void>, open: () => void }>())
const gate = (id: string) => {
  let open = (): void => {}
  const wait = new Promise<void>(resolve => { open = resolve })
  gates.set(id, { wait, open })
  return open
}
// Each upstream connection by the path it was asked for: reset once the plugin holds the head.
const sockets = new Map<string, Socket>()
sharedWithPlugins('holding', (path: string) => sockets.get(path)?.resetAndDestroy())
const upstream = createServer(socket => {
  socket.on('error', () => {})
  let head = ''
  socket.on('data', (c: Buffer) => {
    head += c.toString('latin1')
    if (!head.includes('\r\n\r\n')) return
    const path = head.split(' ')[1] as string
    sockets.set(path, socket)
    const framing = path === '/chunked' ? 'Transfer-Encoding: chunked\r\n\r\n5\r\npart' : path === '/length' ? 'Content-Length: 100\r\n\r\npart' : '\r\npart'
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${framing}`)
  })
})
await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
t.teardown(() => { for (const s of sockets.values()) s.destroy(); upstream.close() })

const dir = t.testdir({})
writeUserPlugin(dir, 'holder', 100, "{ onResponse (_res, req) { shared('holding')(req.path); return shared('gates').get(req.path)?.wait } }")
const gw = await startGateway(`
loadPlugins: [ ./holder.ts ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { holder: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

for (const path of ['/close-delimited', '/chunked', '/length']) {
  t.test(`${path}: reset while onResponse holds the head: 502, logged as such`, async t => {
    gw.logs.length = 0
    const open = gate(path)
    const answer = request(`${gw.url}${path}`, { headersTimeout: 10_000, bodyTimeout: 10_000 })
    t.ok(await waitForLog(gw.logs, { msg: 'upstream request failed' }, 10_000), 'the gateway saw the reset')
    open()
    const res = await answer
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { error: 'bad_gateway' })
    t.match(await waitForLog(gw.logs, { msg: 'request', requestId: res.headers['x-request-id'] }), { status: 502, error: undefined })
  })
}

