import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * A TCP proxy to `port`, closed at teardown. partition(): the connections open so far stop carrying
 * anything, either way, and are never closed (as across a network partition, or to a host gone
 * without a reset); connections opened later get through. cut(): the connections open so far are
 * closed, what they had not carried yet dropped.
 */
export async function partitionProxy (t: Test, port: number): Promise<{ port: number, accepted: () => number, partition: () => void, cut: () => void }> {
  const open = new Set<[Socket, Socket]>()
  let accepted = 0
  // allowHalfOpen: a client's FIN gets no answer either.
  const proxy = createServer({ allowHalfOpen: true }, client => {
    accepted++
    const upstream = connect(port, '127.0.0.1')
    const pair: [Socket, Socket] = [client, upstream]
    open.add(pair)
    client.pipe(upstream)
    upstream.pipe(client)
    for (const s of pair) s.on('error', () => {})
    client.on('close', () => { open.delete(pair); upstream.destroy() })
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { proxy.close(() => resolve()); for (const [c, u] of open) { c.destroy(); u.destroy() } }))
  return {
    port: (proxy.address() as AddressInfo).port,
    accepted: () => accepted,
    partition: () => {
      for (const [client, upstream] of open) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
    },
    cut: () => {
      for (const [client, upstream] of open) {
        upstream.destroy()
        client.destroy()
      }
    }
  }
}
