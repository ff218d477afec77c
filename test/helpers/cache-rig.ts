import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { request } from 'undici'
import { startUpstream, type TestUpstream } from './upstream.ts'
import { startGateway, type TestGateway } from './gateway.ts'
import { freePort } from './ports.ts'

/** What the upstream does with the n-th request it received. */
export type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void

export interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, cacheStatus: string }

export interface Rig {
  gw: TestGateway
  up: TestUpstream
  /** Requests the upstream received, in order. */
  seen: Array<{ method: string, url: string, headers: IncomingMessage['headers'] }>
  get (path: string, headers?: Record<string, string>, method?: string): Promise<Answer>
}

/**
 * A real upstream running `handler` (given the count of requests so far), behind a gateway (with
 * an admin listener) whose route `r` uses the cache with `config`; `extra`: more of the config.
 */
export async function rig (t: Test, handler: Handler, config = '{}', extra = ''): Promise<Rig> {
  const seen: Rig['seen'] = []
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method as string, url: req.url as string, headers: req.headers })
    req.resume()
    req.on('end', () => handler(req, res, seen.length))
  }
  // A port no parallel test's server takes once a test has closed the upstream (see freePort).
  let up: TestUpstream
  for (let attempt = 1; ; attempt++) {
    try { up = await startUpstream(handle, await freePort()); break } catch (err) { if (attempt === 5) throw err }
  }
  t.teardown(() => up.close())
  const gw = await startGateway(`
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      cache: ${config}
${extra}`)
  t.teardown(() => gw.close())
  return {
    gw,
    up,
    seen,
    async get (path, headers = {}, method = 'GET') {
      const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers })
      const body = await res.body.text()
      return { status: res.statusCode, headers: res.headers, body, cacheStatus: String(res.headers['cache-status']) }
    }
  }
}

/**
 * A Cache-Status whose ttl reads one second less when the upstream's answer took half a second or more,
 * or the entry waited that long for a hit (a loaded machine): that time counts in the age (RFC 9111 4.2.3), rounded.
 * `whole`: the ttl the cache gives when the answer comes at once.
 */
export const fresh = (status: string, whole = 60) => status.replace(new RegExp(`; ttl=${whole - 1}$`), `; ttl=${whole}`)
