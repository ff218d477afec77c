import { createServer } from 'node:http'
import { announce } from './announce.ts'

// The origin every target ends at: a fixed body of BENCH_SIZE bytes, keep-alive.
const body = Buffer.alloc(Number(process.env.BENCH_SIZE ?? 1024), 'x')
const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }

const server = createServer((req, res) => {
  req.resume()
  res.writeHead(200, headers)
  res.end(body)
})
// Longer than any pause between slices, so proxies keep their pooled connections.
server.keepAliveTimeout = 120_000
server.listen(0, '127.0.0.1', () => announce(server.address()))
