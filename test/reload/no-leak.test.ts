import t from 'tap'
import type { Server } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Client } from 'undici'
import type { Runtime } from '../../src/runtime/runtime.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

// A full GC before each reading, so only what something still holds is counted.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const settle = async () => {
  for (let i = 0; i < 3; i++) { gc(); await new Promise(resolve => setImmediate(resolve)) }
}
const heapAfterGc = async () => { await settle(); return process.memoryUsage().heapUsed }
const tcpHandles = () => process.getActiveResourcesInfo().filter(r => r === 'TCPSocketWrap').length
const connections = (s: Server) => new Promise<number>((resolve, reject) => s.getConnections((err, n) => err ? reject(err) : resolve(n)))

const RELOADS = 200
const WARM_UP = 20

t.test(`${RELOADS} reloads grow neither memory nor open sockets`, async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const configAt = (i: number) => gatewayYaml({ [`u${i}`]: [(i % 2 === 0 ? a : b).url] }, `
  - { name: api, match: { path: "/api/*" }, upstream: u${i} }
  - { name: r${i}, match: { path: "/r${i}" }, upstream: u${i} }`)
  const cf = await configFile(configAt(0))
  const gw = await startFromFile(cf.file)
  const client = new Client(gw.url)
  t.teardown(async () => { await client.close(); await gw.close(); await Promise.all([a.close(), b.close(), cf.remove()]) })

  const retired: Array<WeakRef<Runtime>> = []
  const reloadAndUse = async (i: number) => {
    await cf.write(configAt(i))
    const old = gw.gateway.runtime
    const status = await gw.reloader.reload('admin')
    if (status.result !== 'success') throw new Error(`reload ${i}: ${JSON.stringify(status)}`)
    retired.push(new WeakRef(old))
    // Traffic on every runtime, so each opens an upstream connection that must be released.
    const res = await client.request({ path: `/api/${i}`, method: 'GET' })
    t.equal(await res.body.text(), i % 2 === 0 ? 'a' : 'b', `request after reload ${i}`)
  }

  for (let i = 1; i <= WARM_UP; i++) await reloadAndUse(i)
  const heapBefore = await heapAfterGc()
  const handlesBefore = tcpHandles()
  for (let i = WARM_UP + 1; i <= RELOADS; i++) await reloadAndUse(i)

  // Old runtimes close their pools once drained; give the closes a moment.
  const upstreamConns = await waitFor(async () => {
    const n = await connections(a.server) + await connections(b.server)
    return n <= 1 ? n : undefined
  })
  t.ok(upstreamConns !== undefined, `upstream connections back to the active runtime's (${upstreamConns})`)
  await settle()
  const alive = retired.filter(r => r.deref() !== undefined).length
  t.ok(alive <= 1, `${alive} of ${retired.length} retired runtimes still in memory`)
  const handlesAfter = tcpHandles()
  t.ok(handlesAfter <= handlesBefore + 1, `open TCP handles ${handlesBefore} -> ${handlesAfter}`)
  const growth = (await heapAfterGc()) - heapBefore
  // Each retained runtime would cost tens of KB (pools, routes, config): 180 would show far above this bound.
  t.ok(growth < 4 * 1024 * 1024, `heap grew by ${Math.round(growth / 1024)} KB over ${RELOADS - WARM_UP} reloads`)
})
