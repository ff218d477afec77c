import { createServer, type Server } from 'node:http'

/**
 * Small local services for the quick start: each answers JSON describing the request it got,
 * so a newcomer can see what the gateway forwarded (path, headers added, X-Forwarded-*).
 */
export async function startDemoUpstream (name: string, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.stringify({
        service: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8') || undefined
      }, null, 2) + '\n'
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name })
      res.end(body)
    })
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
  return server
}
