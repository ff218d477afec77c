import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * A TCP proxy to the Redis on `redisPort` that, instead of passing on the chunk holding its clients'
 * `nth` SRANDMEMBER (a purge's next batch, the ones before all done), calls `cut` once: a server
 * lost in the middle of a purge. Everything else goes through. Returns the proxy's port.
 */
export async function srandmemberCutProxy (t: Test, redisPort: number, nth: number, cut: (client: Socket, upstream: Socket) => void): Promise<number> {
  let seen = 0
  let done = false
  const sockets: Socket[] = []
  const server = createServer(client => {
    const upstream = connect(redisPort, '127.0.0.1')
    sockets.push(client, upstream)
    client.on('data', (d: Buffer) => {
      if (!done && (seen += d.toString('latin1').match(/srandmember/gi)?.length ?? 0) >= nth) {
        done = true
        cut(client, upstream)
        return
      }
      upstream.write(d)
    })
    upstream.on('data', (d: Buffer) => client.write(d))
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.close(() => resolve()); for (const s of sockets) s.destroy() }))
  return (server.address() as AddressInfo).port
}
