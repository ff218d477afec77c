import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { request } from 'undici'
import { freePort } from '../helpers/ports.ts'

/** A real loopback backend the test can make fail, slow, unhealthy, or kill and bring back on the same port. */
export interface Backend {
  readonly name: string
  readonly url: string
  /** Requests served (health checks not counted). */
  hits: number
  /** Requests received and not answered yet (waiting out delayMs). */
  inFlight: number
  /** Answer every request with this status (200 = normal). */
  status: number
  /** Break the connection (after reading the whole request) instead of answering. */
  reset: boolean
  /** Delay before the response headers. */
  delayMs: number
  /** What GET /health answers. */
  healthy: boolean
  /** Health checks received. */
  checks: number
  /** Bodies of the requests received, for body-retry tests. */
  readonly bodies: string[]
  kill (): Promise<void>
  revive (): Promise<void>
}

export async function startBackends (t: { teardown (fn: () => unknown): void }, n: number): Promise<Backend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startBackend(t, String.fromCharCode(97 + i))))
}

async function startBackend (t: { teardown (fn: () => unknown): void }, name: string): Promise<Backend> {
  let server: Server
  let port: number
  const b: Backend = {
    name,
    url: '',
    hits: 0,
    inFlight: 0,
    status: 200,
    reset: false,
    delayMs: 0,
    healthy: true,
    checks: 0,
    bodies: [],
    kill: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }),
    revive: () => listen()
  }
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.url === '/health') { b.checks++; res.writeHead(b.healthy ? 200 : 503).end(); return }
      b.hits++
      b.inFlight++
      b.bodies.push(Buffer.concat(chunks).toString())
      if (b.reset) { b.inFlight--; req.socket.destroy(); return }
      const body = JSON.stringify({ backend: name })
      const answer = () => { b.inFlight--; if (!res.destroyed) res.writeHead(b.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body) }
      if (b.delayMs > 0) setTimeout(answer, b.delayMs)
      else answer()
    })
  }
  const listen = async () => {
    server = createServer(handle)
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve))
  }
  // A port no parallel test's server can take while this one is killed (see freePort).
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try { await listen(); break } catch (err) { if (attempt === 5) throw err }
  }
  ;(b as { url: string }).url = `http://127.0.0.1:${port}`
  t.teardown(() => server.listening ? b.kill() : undefined)
  return b
}

export interface LoadResult {
  /** Status code counts; 0 for a request that failed at the client (reset, refused). */
  statuses: Record<number, number>
  /** Which backend answered each 200, by name. */
  backends: Record<string, number>
}

/**
 * Sends `total` requests with `concurrency` in flight, calling `after(done)` as each completes
 * (tests use it to kill or revive a backend mid-load). Bounded by `total`.
 */
export async function load (url: string, total: number, concurrency: number, options: {
  method?: string, headers?: (i: number) => Record<string, string>, after?: (done: number) => unknown
} = {}): Promise<LoadResult> {
  const result: LoadResult = { statuses: {}, backends: {} }
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < total) {
      const i = next++
      let status = 0
      try {
        const res = await request(url, { method: (options.method ?? 'GET') as 'GET', headers: options.headers?.(i) })
        status = res.statusCode
        const body = await res.body.text()
        if (status === 200) { const who = (JSON.parse(body) as { backend: string }).backend; result.backends[who] = (result.backends[who] ?? 0) + 1 }
      } catch {
        status = 0
      }
      result.statuses[status] = (result.statuses[status] ?? 0) + 1
      await options.after?.(++done)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return result
}
