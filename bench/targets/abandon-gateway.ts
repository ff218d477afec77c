import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as api from '../../src/index.ts'
import { announce } from './announce.ts'

// One process: an origin that answers /slow after 300 ms and anything else at once, and the gateway
// in front of it with a pool of 16 connections, so that the abandon bench's clients queue and leave.
const origin = createServer((req, res) => {
  req.resume()
  if (req.url === '/slow') setTimeout(() => res.end('slow'), 300)
  else res.end('ok')
})
origin.keepAliveTimeout = 120_000
await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))

const config = await api.parseConfig(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  shutdownTimeout: 5s
admin:
  listen: { host: 127.0.0.1, port: 0 }
logging: { level: error, accessLog: false }
upstreams:
  origin:
    targets: [ { url: "http://127.0.0.1:${(origin.address() as AddressInfo).port}" } ]
    connections: 16
routes:
  - { name: all, match: { path: /* }, upstream: origin }
`, 'bench-abandon.yaml', {})
const running = await api.startPortcullis(config, api.createLogger({ pretty: false, level: 'error' }))
// 'shutdown': a graceful stop as on SIGTERM, timed, reported back before the process exits.
process.on('message', msg => {
  if (msg !== 'shutdown') return
  const started = performance.now()
  void running.close().then(() => { process.send?.({ closedMs: performance.now() - started }); origin.close() })
})
announce(running.gateway.app.server.address(), { admin: running.adminUrl, shutdownTimeoutMs: 5000 })
