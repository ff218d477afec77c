import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { announce } from './announce.ts'

// The origin every target ends at: a fixed body of BENCH_SIZE bytes, keep-alive. It listens on
// three ports (one process, one handler) so a three-target upstream costs the origin nothing extra.
const body = Buffer.alloc(Number(process.env.BENCH_SIZE ?? 1024), 'x')
const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }

const servers = [0, 1, 2].map(() => createServer((req, res) => {
  req.resume()
  res.writeHead(200, headers)
  res.end(body)
}))
await Promise.all(servers.map(server => new Promise<void>(resolve => {
  // Longer than any pause between slices, so proxies keep their pooled connections.
  server.keepAliveTimeout = 120_000
  server.listen(0, '127.0.0.1', resolve)
})))
announce(servers[0]?.address() ?? null, { ports: servers.map(s => (s.address() as AddressInfo).port) })
