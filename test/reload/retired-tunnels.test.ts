import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import type { Runtime } from '../../src/runtime/runtime.ts'
import { until } from '../helpers/wait.ts'
import { configFile, startFromFile } from './helpers.ts'

// A WebSocket authenticated with a key a reload revokes is relayed as long as its ends keep it
// open, and holds the replaced config (plugins, pools, consumers) alive that long: unless
// server.reloadTunnelTimeout closes it.

const ALICE = 'alice-key-0123456789abcdef'
const BOB = 'bob-key-0123456789abcdefgh'

/** An echo server; an upgrade to /held is answered only once `release` is called. */
async function echoServer (t: Test): Promise<{ url: string, held: Promise<() => void> }> {
  const server = createServer((_req, res) => res.end('ok'))
  let heldUpgrade: (release: () => void) => void = () => {}
  const held = new Promise<() => void>(resolve => { heldUpgrade = resolve })
  const wss = new WebSocketServer({
    server,
    verifyClient: (info, done) => { if (info.req.url === '/held') heldUpgrade(() => done(true)); else done(true) }
  })
  wss.on('connection', ws => ws.on('message', (data, binary) => ws.send(data, { binary })))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(resolve) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held }
}

/** `consumers`: the consumers' YAML list items; `server`: lines added to the server section. */
const yaml = (url: string, consumers: string, server = '') => `server:
  listen: { host: 127.0.0.1, port: 0 }
${server}
consumers:
${consumers}
upstreams:
  ws: { targets: [ { url: "${url}" } ] }
routes:
  - name: live
    match: { path: /* }
    upstream: ws
    plugins: { key-auth: {} }
`
const alice = `  - { id: alice, credentials: { key-auth: { keys: ["${ALICE}"] } } }`
const bob = `  - { id: bob, credentials: { key-auth: { keys: ["${BOB}"] } } }`

async function setup (t: Test, server: string) {
  const { url, held } = await echoServer(t)
  const cf = await configFile(yaml(url, `${alice}\n${bob}`, server))
  const gw = await startFromFile(cf.file)
  const sockets: WebSocket[] = []
  t.teardown(async () => {
    for (const ws of sockets) ws.terminate()
    await gw.close()
    await cf.remove()
  })
  const connect = (key: string, path = '/live') => {
    const ws = new WebSocket(gw.url.replace('http', 'ws') + path, { headers: { 'x-api-key': key } })
    sockets.push(ws)
    return ws
  }
  const open = async (key: string) => {
    const ws = connect(key)
    await once(ws, 'open')
    return ws
  }
  const echo = async (ws: WebSocket, text: string) => { ws.send(text); const [data] = await once(ws, 'message'); return String(data) }
  /** Takes alice out of the consumers; returns the runtime the reload retired, and when the reload began and ended. */
  const revokeAlice = async (): Promise<{ retired: Runtime, at: number, done: number }> => {
    const retired = gw.gateway.runtime
    await cf.write(yaml(url, bob, server))
    const at = performance.now()
    t.equal((await gw.reloader.reload('admin')).result, 'success')
    const done = performance.now()
    const res = await request(`${gw.url}/live`, { headers: { 'x-api-key': ALICE } })
    await res.body.dump()
    t.equal(res.statusCode, 401, 'alice\'s key no longer opens anything')
    return { retired, at, done }
  }
  const reloadWith = async (serverLines: string) => { await cf.write(yaml(url, bob, serverLines)); return (await gw.reloader.reload('admin')).result }
  return { gw, connect, open, echo, revokeAlice, reloadWith, held }
}

t.test('with server.reloadTunnelTimeout, a tunnel of the replaced config is closed that long after the reload', async t => {
  const { gw, connect, open, echo, revokeAlice, held } = await setup(t, '  reloadTunnelTimeout: 300ms')
  const old = await open(ALICE)
  t.equal(await echo(old, 'before'), 'before')
  const closed = once(old, 'close')
  // An upgrade alice began before the reload, its 101 to come only past the limit.
  const late = connect(ALICE, '/held')
  const release = await held
  const { retired, at, done } = await revokeAlice()
  t.equal(retired.inFlight, 2, 'the replaced config holds the tunnel and the upgrade under way')
  const fresh = await open(BOB)

  await closed
  // The timer starts during the reload: at least 300 ms after its start, and soon after its end
  // (however long the reload itself took on a loaded machine).
  const [after, afterDone] = [performance.now() - at, performance.now() - done]
  t.ok(after >= 290 && afterDone < 2_000, `closed ${Math.round(after)} ms after the reload began, ${Math.round(afterDone)} ms after it ended`)
  t.ok(await until(() => retired.inFlight === 1), 'the upgrade under way is still in flight')
  const lateClosed = once(late, 'close')
  release()
  await lateClosed
  // Its line is written as the gateway's side closes, not necessarily before the client sees it.
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/held' && l.status === 101 && l.error === 'reload')), 'a tunnel opening on the replaced config past the limit is closed at once')
  t.ok(await until(() => retired.inFlight === 0 && !gw.gateway.retiring.includes(retired)), 'the replaced config is released')
  const line = gw.logs.find(l => l.msg === 'request' && l.path === '/live' && l.status === 101)
  t.match(line, { route: 'live', consumer: 'alice', error: 'reload' }, 'logged as closed by the gateway, with the reason')
  t.ok(gw.logs.some(l => l.msg === 'WebSockets still open on a replaced config closed (server.reloadTunnelTimeout)' && l.tunnels === 1), 'and why')

  // The new config's tunnel is untouched, past the old one's limit.
  await new Promise(resolve => setTimeout(resolve, 400))
  t.equal(fresh.readyState, WebSocket.OPEN, 'the tunnel opened after the reload stays open')
  t.equal(await echo(fresh, 'after'), 'after', 'and relays')
  t.equal(gw.gateway.runtime.inFlight, 1)
})

t.test('without it, a tunnel of the replaced config stays open', async t => {
  const { gw, open, echo, revokeAlice } = await setup(t, '')
  const old = await open(ALICE)
  const { retired } = await revokeAlice()
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(await echo(old, 'still'), 'still', 'the revoked key\'s tunnel still relays')
  t.equal(retired.inFlight, 1, 'and holds the replaced config')
  t.ok(gw.gateway.retiring.includes(retired))
})

t.test('a reload that sets it also closes the tunnels of configs retired by earlier reloads', async t => {
  const { gw, open, revokeAlice, reloadWith } = await setup(t, '')
  const old = await open(ALICE)
  const { retired } = await revokeAlice()
  const closed = once(old, 'close')
  t.equal(await reloadWith('  reloadTunnelTimeout: 300ms'), 'success', 'the operator adds the setting afterwards')
  await closed
  t.ok(await until(() => retired.inFlight === 0 && !gw.gateway.retiring.includes(retired)), 'the config the first reload replaced is released')
})

t.test('a reload that lowers it closes the tunnels of configs retired earlier with a longer one', async t => {
  const { gw, open, revokeAlice, reloadWith } = await setup(t, '  reloadTunnelTimeout: 1h')
  const old = await open(ALICE)
  const { retired } = await revokeAlice() // its tunnels are to close in an hour
  t.equal(await reloadWith('  reloadTunnelTimeout: 300ms'), 'success', 'the operator lowers it')
  t.ok(await until(() => old.readyState === WebSocket.CLOSED, 10_000), 'alice\'s tunnel is closed, not an hour on')
  t.ok(await until(() => retired.inFlight === 0 && !gw.gateway.retiring.includes(retired)), 'the config the first reload replaced is released')
})

t.test('server.reloadTunnelTimeout must be more than 0', async t => {
  const url = 'http://127.0.0.1:9'
  const cf = await configFile(yaml(url, bob, '  reloadTunnelTimeout: 0s'))
  t.teardown(() => cf.remove())
  await t.rejects(startFromFile(cf.file), /reloadTunnelTimeout.*must be more than 0/s)
})
