import { createServer } from 'node:http'
import { announce } from './announce.ts'

// Case (j): node:http answering every request with a constant, pinned like the proxies. A cache
// hit is a Node HTTP response with nothing behind it, so this is the most a hit can reach here:
// the same body, and the headers a hit sends (Node adds Date and Keep-Alive as it does for the gateway).
const body = Buffer.alloc(Number(process.env.BENCH_SIZE ?? 1024), 'x')
const headers = {
  'content-type': 'application/octet-stream',
  'content-length': String(body.length),
  'x-request-id': '2f1c6a0e-6b4d-4e8a-9c3b-7d5e1f2a4b6c',
  'cache-status': 'Portcullis; hit',
  age: '1'
}

const server = createServer((req, res) => {
  req.resume()
  res.writeHead(200, headers)
  res.end(body)
})
server.keepAliveTimeout = 120_000
server.listen(0, '127.0.0.1', () => { announce(server.address()) })
