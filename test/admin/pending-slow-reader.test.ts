import t, { type Test } from 'tap'
import { connect, type NetConnectOpts, type Socket } from 'node:net'
import { join } from 'node:path'
import { waitForLog } from '../helpers/logs.ts'

// Set before the server module loads: a window of 2 s, not 10 (still several of the kernel's steps
// at the pace read here: it takes more as a third of its send buffer frees, some 1.4 MB).
process.env.PORTCULLIS_ADMIN_SEND_MS = '2000'
// Every reset logged: the test waits for its line.
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'
const { ADMIN_LIMITS } = await import('../../src/server/admin-server.ts')
const { configFile, gatewayYaml, namedUpstream, startFromFile } = await import('../reload/helpers.ts')

const RESET = 'admin connection reset: its client left an answer unread'
/** The answer's body: 24 MB, some 6 s at the pace read here, far more than the kernel buffers. */
const SIZE = 24_000_000
/** The pace, in bytes a millisecond (4 MB/s), kept up by reads every TICK_MS (catching up on a late tick). */
const PACE = 4_000
const TICK_MS = 20
/** The client's buffer: enough for a tick late by 250 ms. */
const BUFFER = 1024 * 1024

/** A gateway whose plugin endpoint GET /plugins/bigp/big answers a JSON string of SIZE bytes; its admin port. */
async function bigAnswer (t: Test) {
  const dir = t.testdir({
    'bigp.ts': `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'bigp',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    ctx.shared('admin', () => { ctx.admin.route('GET', '/big', async () => ({ body: 'x'.repeat(${SIZE - 2}) })) })
    return {}
  }
})
`
  })
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: all, match: { path: "/*" }, upstream: a, plugins: { bigp: {} } }', 'loadPlugins: [' + JSON.stringify(join(dir, 'bigp.ts')) + ']'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  return { gw, port: Number(new URL(gw.adminUrl as string).port) }
}

/**
 * A client asking for the big answer and reading it at a steady pace while `reading()` holds;
 * `drain()` reads the rest at once. `ended`: how much it took once the connection closed.
 */
function slowRead (port: number, reading: (received: number) => boolean) {
  // Node takes a stream option here too (its types do not say so).
  const socket: Socket = connect({ port, host: '127.0.0.1', readableHighWaterMark: BUFFER } as NetConnectOpts)
  let received = 0
  socket.on('error', () => {})
  const started = performance.now()
  const pace = setInterval(() => {
    if (!reading(received)) return
    const due = Math.max(0, Math.floor((performance.now() - started) * PACE) - received)
    const chunk = socket.read(Math.min(due, socket.readableLength)) as Buffer | null
    if (chunk !== null) received += chunk.length
  }, TICK_MS)
  const ended = new Promise<number>(resolve => socket.once('close', () => { clearInterval(pace); resolve(received) }))
  socket.write('GET /plugins/bigp/big HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
  // A paused socket sees no reset: only a read meets it (on Linux, as the end of what the kernel held).
  const drain = () => { clearInterval(pace); socket.on('data', (c: Buffer) => { received += c.length }) }
  return { ended, drain }
}

t.equal(ADMIN_LIMITS.sendMs, 2000, 'the window shortened for the test')

// A 10 MB /metrics read at 300 KB/s was reset after 10 s: the window ran from the answer's being
// handed to the socket, whatever the client took meanwhile.
t.test('a client reading a large answer slowly but steadily, for many windows, is sent it whole', async t => {
  const { gw, port } = await bigAnswer(t)
  const started = performance.now()
  const { ended } = slowRead(port, () => true)
  const received = await ended
  t.ok(performance.now() - started > 2 * ADMIN_LIMITS.sendMs, 'the read outlasted the window twice over')
  t.ok(received > SIZE, `the whole answer taken (${received} bytes, head and body)`)
  t.notOk(gw.logs.some(l => l.msg === RESET), 'no reset logged')
})

t.test('a client that stops reading a large answer is reset', async t => {
  const { gw, port } = await bigAnswer(t)
  let resetWhileReading = false
  // Reads half, over windows, then nothing.
  const { ended, drain } = slowRead(port, received => {
    if (received >= SIZE / 2) return false
    resetWhileReading ||= gw.logs.some(l => l.msg === RESET)
    return true
  })
  const line = await waitForLog(gw.logs, { msg: RESET }, 15 * ADMIN_LIMITS.sendMs)
  t.match(line, { level: 40, clientIp: '127.0.0.1', sendMs: ADMIN_LIMITS.sendMs }, 'the reset logged')
  t.notOk(resetWhileReading, 'not while it read')
  drain()
  const received = await ended
  t.ok(received < SIZE, `the connection ended, the answer not all sent (${received} bytes)`)
})
