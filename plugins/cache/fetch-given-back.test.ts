import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { numberingUpstream, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { until } from '../../test/helpers/wait.ts'

// A client that leaves while its request takes the key's fetch (the take's reply slow): the fetch
// taken is given back, not held for collapseTimeout, which the key's next request would wait out.

const COLLAPSE_MS = 6_000

/**
 * A TCP proxy to Redis that holds the first command naming a fetch lock (the take), and whatever
 * the gateway sends after it, until release(): the take is answered that much later.
 */
async function takeHoldingProxy (port: number): Promise<{ port: number, holding: () => boolean, release: () => void, close: () => void }> {
  const sockets = new Set<Socket>()
  let held: Array<() => void> | undefined
  let done = false
  const server = createServer(client => {
    const upstream = connect(port, '127.0.0.1')
    sockets.add(client).add(upstream)
    for (const s of [client, upstream]) s.on('error', () => {})
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    upstream.pipe(client)
    client.on('data', (chunk: Buffer) => {
      if (!done && held === undefined && chunk.includes('#fetch')) held = []
      if (held !== undefined) held.push(() => upstream.write(chunk))
      else upstream.write(chunk)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    holding: () => held !== undefined,
    release: () => { const h = held ?? []; held = undefined; done = true; for (const write of h) write() },
    close: () => { server.close(); for (const s of sockets) s.destroy() }
  }
}

t.test('a fetch taken as its client left is given back: the next request is answered at once', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const proxy = await takeHoldingProxy(redis.port)
  t.teardown(() => proxy.close())
  const up = await numberingUpstream()
  t.teardown(() => up.close())
  const config = sharedStoreConfig(`redis://127.0.0.1:${proxy.port}`, up.url, 'given:', `{ cache: { store: shared, collapseTimeout: ${COLLAPSE_MS / 1000}s } }`)
  const gw = await startGateway(config)
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))

  // Client A asks for /k and leaves while its take waits for Redis.
  const a = connect(gw.ports.listen, '127.0.0.1', () => a.write('GET /k HTTP/1.1\r\nHost: example.test\r\n\r\n'))
  a.on('error', () => {})
  t.ok(await until(() => proxy.holding(), 3_000), "A's take is held")
  a.resetAndDestroy()
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0, 3_000), "A's exchange is over")
  proxy.release()
  const locks = async () => (await redis.cli('KEYS', 'given:*#fetch')).split('\n').filter(k => k !== '')
  // The take ran (the lock was set), then was given back.
  let gone = false
  for (const start = performance.now(); !gone && performance.now() - start < 3_000;) gone = (await locks()).length === 0
  t.ok(gone, 'the lock is gone')

  // Client B, on the same instance: not held by A's fetch.
  const started = performance.now()
  const b = await request(`${gw.url}/k`, { headers: { host: 'example.test' } })
  const body = await b.body.text()
  const took = performance.now() - started
  t.equal(body, '/k #1', 'fetched upstream (A never reached it)')
  t.ok(took < 1_500, `answered in ${Math.round(took)} ms, collapseTimeout is ${COLLAPSE_MS} ms`)
})
