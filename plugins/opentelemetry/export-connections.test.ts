import t from 'tap'
import { createServer, request, type ClientRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { exportConnections } from './export-connections.ts'

// A collector that answers 404 at once, keep-alive. Node frees an export's socket as the answer
// ends: the request's 'error' listener goes then, while a write of the body may still be queued.
const collector = createServer((req, res) => { req.resume(); res.writeHead(404).end() })
await new Promise<void>(resolve => collector.listen(0, '127.0.0.1', resolve))
const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`
t.teardown(() => { collector.closeAllConnections(); collector.close() })

/** An export of a small body through `agent`; `onEnd` runs as its answer ends, once Node has let go of the socket. */
async function exportThrough (agent: ReturnType<typeof exportConnections>['agent'], onEnd: (req: ClientRequest) => void): Promise<void> {
  const req = request(url, { method: 'POST', agent })
  req.on('error', () => {})
  const [res] = await once(req.end('{}'), 'response') as [IncomingMessage]
  res.on('end', () => { onEnd(req) })
  res.resume()
  await once(req, 'close')
}

t.test('a write that fails as the socket is freed (EPIPE, the body still queued) is no uncaught error', async t => {
  const connections = exportConnections(url, 5_000)
  t.teardown(() => { connections.close() })
  let socket: ClientRequest['socket'] = null
  await exportThrough(connections.agent, req => {
    socket = req.socket
    // What the failed write of a queued body does: the socket destroyed with its error, emitted a turn later.
    req.socket?.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
  })
  t.ok(socket !== null, 'the socket the export had')
  // Without a listener of the agent's, the 'error' (after 'close' of the request) ended the process.
  await once(socket as unknown as NodeJS.EventEmitter, 'close')
  t.same(Object.values(connections.agent.freeSockets).flat(), [], 'not kept')
})

t.test('a socket freed with a write still queued is not kept for the next export', async t => {
  const connections = exportConnections(url, 5_000)
  t.teardown(() => { connections.close() })
  let socket: ClientRequest['socket'] = null
  await exportThrough(connections.agent, req => {
    socket = req.socket
    // A write the socket holds as it is freed (corked here, as one the kernel had no room for).
    req.socket?.cork()
    req.socket?.write('x')
  })
  t.ok(socket !== null, 'the socket the export had')
  t.ok((socket as unknown as { destroyed: boolean }).destroyed, 'destroyed')
  t.same(Object.values(connections.agent.freeSockets).flat(), [], 'not kept')
  // The control: a clean one is kept.
  await exportThrough(connections.agent, () => {})
  t.equal(Object.values(connections.agent.freeSockets).flat().length, 1, 'a socket with nothing queued is kept')
})
