import { join } from 'node:path'
import type { IncomingHttpHeaders } from 'node:http'
import { parseList } from 'structured-headers'
import type { Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from './gateway.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'

const INDEX = new URL('../../src/index.ts', import.meta.url).href

/**
 * A stand-in auth plugin (priority 1500, before rate-limit): x-consumer names a consumer of the
 * config, x-org becomes the claim `org` in req.locals.claims, x-claims (JSON) the claims whole.
 */
const AUTH_PLUGIN = `
import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'test-auth',
  priority: 1500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    return {
      onRequest (req) {
        const id = req.clientHeaders['x-consumer']
        if (typeof id === 'string') req.consumer = ctx.consumers.get(id)
        const org = req.clientHeaders['x-org']
        if (typeof org === 'string') req.locals.claims = { org }
        const claims = req.clientHeaders['x-claims']
        if (typeof claims === 'string') req.locals.claims = JSON.parse(claims)
      }
    }
  }
})
`

export interface Setup { upstream: TestUpstream, dir: string }

/** An echo upstream, and the test-auth plugin in the test's own dir (t.testdir(): inside the package, so loaded as ESM). */
export async function setup (t: Test): Promise<Setup> {
  const upstream = await startUpstream()
  const dir = t.testdir({ 'test-auth.ts': AUTH_PLUGIN })
  t.teardown(() => upstream.close())
  return { upstream, dir }
}

/**
 * A gateway with the admin API, the test-auth plugin loaded, and `body` (YAML with `stores:`,
 * `consumers:`, `plugins:` and/or `routes:`) after `upstreams: { up }`. Routes use upstream `up`.
 */
export async function gateway (s: Setup, body: string): Promise<TestGateway> {
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./test-auth.ts ]
upstreams:
  up: { targets: [ { url: "${s.upstream.url}" } ] }
${body}`, { file: join(s.dir, 'gateway.yaml') })
  // Redis connects after start; until then every store call fails (no offline queue).
  if (!await storesUp(gw.adminUrl as string)) throw new Error('stores did not come up')
  return gw
}

/** Waits until GET /stores shows every store up. */
export async function storesUp (adminUrl: string, maxMs = 5_000): Promise<boolean> {
  for (const start = performance.now(); performance.now() - start < maxMs;) {
    const { stores } = await (await request(`${adminUrl}/stores`)).body.json() as { stores: Array<{ state: string }> }
    if (stores.every(st => st.state === 'up')) return true
    await sleep(20)
  }
  return false
}

/** A routes: item to upstream `up` with `rate-limit: <config>` (flow-style YAML). */
export const limitedRoute = (name: string, path: string, config: string): string => `  - name: ${name}
    match: { path: ${path} }
    upstream: up
    plugins:
      rate-limit: ${config}
`

export interface Answer { status: number, headers: IncomingHttpHeaders, body: Record<string, unknown>, ms: number }

export async function send (url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now()
  const res = await request(url, { headers })
  const body = await res.body.json() as Record<string, unknown>
  return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started }
}

type Params = Record<string, unknown>

/** A structured-field List (RFC 9651) of String items with parameters, parsed by a real parser; throws when it is not one. */
export function sfList (value: unknown): Array<{ name: string } & Params> {
  if (typeof value !== 'string') throw new Error(`not a header value: ${String(value)}`)
  return parseList(value).map(([item, params]) => {
    if (typeof item !== 'string') throw new Error(`item ${JSON.stringify(item)} is not an sf-string`)
    return { name: item, ...Object.fromEntries(params) }
  })
}

/** RateLimit-Policy and RateLimit of a response, parsed. */
export function rateLimitHeaders (a: Answer): { policies: Array<{ name: string } & Params>, limit: Array<{ name: string } & Params> } {
  return { policies: sfList(a.headers['ratelimit-policy']), limit: sfList(a.headers.ratelimit) }
}

/** The value of one metric series in the admin API's /metrics text. */
export async function metric (adminUrl: string, series: string): Promise<number | undefined> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text()
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

export const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
