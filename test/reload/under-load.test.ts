import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Client, request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { configFile, gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

const RELOADS = 50
const KEEP_ALIVE_CLIENTS = 4
const NEW_CONNECTION_CLIENTS = 2
/** Per client: enough to overlap every reload, bounded whatever happens. */
const MAX_REQUESTS = 3_000

/** Config `i`: its own upstream name and target, the shared /api route, and a route of its own. */
const configAt = (i: number, targets: string[]) => gatewayYaml({ [`u${i}`]: [targets[i % targets.length] as string] }, `
  - { name: api, match: { path: "/api/*" }, upstream: u${i} }
  - { name: only-${i}, match: { path: "/only-${i}" }, upstream: u${i} }`)

interface Tally { ok: number, failed: string[], byUpstream: Map<string, number> }

t.test(`${RELOADS} reloads that change routes and upstreams fail no request and reset no connection`, async t => {
  const ups = await Promise.all(['a', 'b', 'c'].map(namedUpstream))
  const targets = ups.map(u => u.url)
  const cf = await configFile(configAt(0, targets))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([...ups.map(u => u.close()), cf.remove()]) })
  let accepted = 0
  gw.gateway.app.server.on('connection', () => { accepted++ })

  const tally: Tally = { ok: 0, failed: [], byUpstream: new Map() }
  const record = async (res: { statusCode: number, headers: Record<string, unknown>, body: { text (): Promise<string> } }) => {
    const body = await res.body.text()
    const upstream = String(res.headers['x-upstream'])
    if (res.statusCode !== 200 || body !== upstream) tally.failed.push(`status ${res.statusCode} body ${body.slice(0, 80)}`)
    else { tally.ok++; tally.byUpstream.set(upstream, (tally.byUpstream.get(upstream) ?? 0) + 1) }
  }
  let reloading = true
  const deadline = performance.now() + 60_000
  const running = () => reloading && performance.now() < deadline

  const keepAlive = async (n: number) => {
    const client = new Client(gw.url, { pipelining: 1 })
    try {
      for (let i = 0; i < MAX_REQUESTS && running(); i++) {
        const post = n % 2 === 1
        await client.request({ path: `/api/k${n}/${i}`, method: post ? 'POST' : 'GET', body: post ? `payload ${i}` : undefined })
          .then(record, (err: Error) => { tally.failed.push(`keep-alive: ${err.message}`) })
      }
    } finally { await client.close() }
  }
  let fresh = 0
  const newConnections = async (n: number) => {
    for (let i = 0; i < MAX_REQUESTS && running(); i++) {
      const client = new Client(gw.url)
      fresh++
      await client.request({ path: `/api/n${n}/${i}`, method: 'GET' }).then(record, (err: Error) => { tally.failed.push(`new connection: ${err.message}`) })
      await client.close()
    }
  }
  const load = Promise.all([
    ...Array.from({ length: KEEP_ALIVE_CLIENTS }, (_, n) => keepAlive(n)),
    ...Array.from({ length: NEW_CONNECTION_CLIENTS }, (_, n) => newConnections(n))
  ])

  const statuses: number[] = []
  try {
    await waitFor(() => tally.ok > 50 ? true : undefined)
    for (let i = 1; i <= RELOADS; i++) {
      await cf.write(configAt(i, targets))
      const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
      statuses.push(res.statusCode)
      await res.body.dump()
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    // Let the load run a little on the last config.
    const settled = tally.ok
    await waitFor(() => tally.ok > settled + 50 ? true : undefined)
  } finally {
    reloading = false
    await load
  }

  t.same(statuses, Array(RELOADS).fill(200), 'every reload succeeded')
  t.same(tally.failed, [], 'no failed request, no reset connection')
  t.ok(tally.ok > 500, `${tally.ok} requests served`)
  t.same([...tally.byUpstream.keys()].sort(), ['a', 'b', 'c'], 'traffic followed the upstream changes')
  t.equal(accepted, KEEP_ALIVE_CLIENTS + fresh, 'keep-alive clients kept their one connection through every reload')
  const last = await request(`${gw.url}/only-${RELOADS}`)
  t.equal(last.headers['x-upstream'], ['a', 'b', 'c'][RELOADS % 3])
  await last.body.dump()
  const gone = await request(`${gw.url}/only-${RELOADS - 1}`)
  t.equal(gone.statusCode, 404, 'routes of earlier configs are gone')
  await gone.body.dump()
})

t.test('a WebSocket opened before a reload keeps working after it', async t => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  wss.on('connection', ws => ws.on('message', (data, binary) => ws.send(data, { binary })))
  await once(wss, 'listening')
  const wsUrl = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`
  const other = await namedUpstream('other')
  const withWs = gatewayYaml({ ws: [wsUrl] }, '  - { name: live, match: { path: /live }, upstream: ws }')
  const cf = await configFile(withWs)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => {
    await gw.close()
    await new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) })
    await Promise.all([other.close(), cf.remove()])
  })

  const ws = new WebSocket(gw.url.replace('http', 'ws') + '/live')
  await once(ws, 'open')
  const echo = async (text: string) => { ws.send(text); const [data] = await once(ws, 'message'); return String(data) }
  t.equal(await echo('before'), 'before')
  const old = gw.gateway.runtime

  // The new config has neither the route nor the upstream the socket went through.
  await cf.write(gatewayYaml({ other: [other.url] }, '  - { name: rest, match: { path: /rest }, upstream: other }'))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  t.not(gw.gateway.runtime, old)
  t.equal(await echo('after'), 'after', 'the open socket still reaches its upstream')
  t.equal(old.inFlight, 1, 'the old runtime waits for the socket')

  const refused = new WebSocket(gw.url.replace('http', 'ws') + '/live')
  const [err] = await once(refused, 'error') as [Error]
  t.equal(err.message, 'Unexpected server response: 404', 'new sockets follow the new config')

  ws.close()
  await once(ws, 'close')
  t.equal(await waitFor(() => old.inFlight === 0 ? true : undefined), true, 'the old runtime drains once the socket closes')
})
