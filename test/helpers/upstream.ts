import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface TestUpstream {
  readonly server: Server
  readonly port: number
  /** http://127.0.0.1:PORT */
  readonly url: string
  close (): Promise<void>
}

/**
 * A real HTTP server on an ephemeral loopback port (or `port`: one from freePort() for an upstream
 * the test closes and then counts on being refused). The default handler echoes the request as JSON.
 */
export async function startUpstream (handler: (req: IncomingMessage, res: ServerResponse) => void = echo, port = 0): Promise<TestUpstream> {
  const server = createServer(handler)
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve))
  const bound = (server.address() as AddressInfo).port
  return {
    server,
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

/** Answers with { method, url, headers, body } of the request it received. */
export function echo (req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
}

/**
 * A loopback port nothing listens on in a test run, 1 (2 with `second`: another): privileged, so no
 * test's server takes it. A port bound then released could be taken by a parallel test's meanwhile.
 */
export async function deadPort (second = false): Promise<number> {
  return second ? 2 : 1
}

/**
 * An upstream that answers `answer to <path>` after `delayOf(path)` ms, recording in `events`, in
 * order: `start <path>` when a request's head came, `end <path>` once its answer was sent, `gone
 * <path>` when the gateway dropped it unanswered.
 */
export async function recordingUpstream (delayOf: (path: string) => number): Promise<TestUpstream & { events: string[] }> {
  const events: string[] = []
  const up = await startUpstream((req, res) => {
    const path = req.url as string
    events.push(`start ${path}`)
    res.on('close', () => { if (!res.writableFinished) events.push(`gone ${path}`) })
    req.resume()
    req.on('end', () => setTimeout(() => {
      if (!res.destroyed) res.end(`answer to ${path}`, () => events.push(`end ${path}`))
    }, delayOf(path)))
  })
  return Object.assign(up, { events })
}
