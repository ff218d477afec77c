import { startDemoUpstream } from '../../demo/upstreams.ts'
import { run as start } from './start.ts'
import { loadOrReport, parseCommand } from '../options.ts'
import type { LoadedConfig } from '../../config/load.ts'
import { createLogger } from '../../logging/logger.ts'
import { normalizeHost } from '../../routing/host-pattern.ts'
import { normalizePath } from '../../routing/normalize-path.ts'
import { describeRoute } from '../../runtime/describe-route.ts'
import type { CompiledRoute } from '../../runtime/compile-route.ts'
import { Runtime } from '../../runtime/runtime.ts'

const HELP = `Usage: portcullis demo [-c FILE]

Starts demo "users" (127.0.0.1:3001) and "orders" (127.0.0.1:3002) services, then the gateway
with FILE (default config/demo.yaml, whose upstreams point at them), and prints requests to try:
those FILE's routes and listeners answer.`

const DEMO_CONFIG = 'config/demo.yaml'

/**
 * A request to try and what config/demo.yaml answers: printed only when the loaded config has the
 * listener and the route (`route`, with `plugins`; null: no route) its comment speaks of.
 */
interface Hint { readonly text: string, readonly route?: string | null, readonly plugins?: readonly string[], readonly admin?: true }

const HINTS: readonly Hint[] = [
  { text: 'curl -i http://127.0.0.1:8080/users/7                 # -> users service, with x-gateway added', route: 'users-api', plugins: ['request-headers'] },
  { text: 'curl -i http://127.0.0.1:8080/orders                  # 401: this route wants an API key', route: 'orders-api', plugins: ['key-auth'] },
  {
    text: `curl -i http://127.0.0.1:8080/orders -H 'x-api-key: demo-key-for-the-quick-start' \\
     -H 'content-type: application/json' -d '{"item":"book"}'   # 200, with RateLimit headers; the 6th in a minute: 429`,
    route: 'orders-api',
    plugins: ['key-auth', 'rate-limit']
  },
  { text: 'curl -i --compressed http://127.0.0.1:8080/catalog/books   # Cache-Status: fwd=uri-miss, stored; compressed', route: 'catalog', plugins: ['cache', 'compress'] },
  { text: 'curl -i --compressed http://127.0.0.1:8080/catalog/books   # again: Cache-Status: hit, and Age', route: 'catalog', plugins: ['cache', 'compress'] },
  { text: 'curl -i http://127.0.0.1:8080/nothing-here            # 404 with a JSON body', route: null },
  { text: 'curl -i --path-as-is http://127.0.0.1:8080/orders/../users/7   # normalized before matching: the users route', route: 'users-api' },
  { text: 'curl -s http://127.0.0.1:9901/readyz                  # admin listener', admin: true }
]

/** What to try with config/demo.yaml, as the README shows it too (a test holds both to what the gateway answers). */
export const TRY = HINTS.map(h => h.text).join('\n')

// Routes past these are left to `portcullis routes`.
const MAX_ROUTES = 10

/** The requests to try on `loaded`: the demo's that it answers as they say, then one for each other route, and the admin listener's. */
export async function hintsFor (loaded: LoadedConfig): Promise<string[]> {
  const runtime = await Runtime.build(loaded, createLogger({ level: 'silent' }), { dryRun: true })
  try {
    const { server, admin } = loaded.config
    const http = server.tls === undefined
    const onGateway = http && server.listen.port === 8080 && reaches(server.listen.host, '127.0.0.1')
    const routeOf = (method: string, url: URL, headers: Record<string, string> = {}): CompiledRoute | undefined => {
      const path = normalizePath(url.pathname)
      return path === undefined ? undefined : runtime.router.match(normalizeHost(url.host), method, path, headers)?.route
    }
    const kept = HINTS.filter(h => {
      if (h.admin === true) return admin !== undefined && admin.listen.port === 9901 && reaches(admin.listen.host, '127.0.0.1')
      if (!onGateway) return false
      const route = routeOf(h.text.includes(' -d ') ? 'POST' : 'GET', new URL(/http:\/\/\S+/.exec(h.text)?.[0] as string))
      const plugins = new Set(route?.pipeline.steps.map(s => s.name))
      return route === undefined ? h.route === null : route.name === h.route && (h.plugins ?? []).every(p => plugins.has(p))
    })
    const tried = new Set(kept.map(h => h.route))
    const base = `${http ? 'http' : 'https'}://${address(server.listen.host)}:${server.listen.port}`
    const others = server.listen.port === 0 ? [] : runtime.router.ordered().filter(r => !tried.has(r.name))
    const lines = [...kept.map(h => h.text), ...others.slice(0, MAX_ROUTES).flatMap(r => routeHint(r, base, routeOf) ?? [])]
    if (others.length > MAX_ROUTES) lines.push(`# and ${others.length - MAX_ROUTES} more routes: portcullis routes -c ${loaded.file}`)
    if (admin !== undefined && !kept.some(h => h.admin === true)) lines.push(`curl -s http://${address(admin.listen.host)}:${admin.listen.port}/readyz   # admin listener`)
    return lines
  } finally {
    await runtime.dispose()
  }
}

/** A request route `r` takes (checked: it is the route that answers it), or undefined when none is found. */
function routeHint (r: CompiledRoute, base: string, routeOf: (method: string, url: URL, headers?: Record<string, string>) => CompiledRoute | undefined): string | undefined {
  const d = describeRoute(r)
  const host = d.hosts[0]?.replace(/^\*/, 'www')
  const method = d.methods === undefined || d.methods.includes('GET') ? 'GET' : d.methods[0] as string
  const headers = { ...d.headers, ...(host === undefined ? {} : { host }) }
  const url = new URL(d.path.replace(/:\w+/g, '1').replace(/\*$/, 'x'), base)
  const routed = routeOf(method, host === undefined ? url : new URL(url.pathname, `${url.protocol}//${host}`), headers)
  if (routed !== r) return undefined
  const flags = [method === 'GET' ? '' : ` -X ${method}`, ...Object.entries(headers).map(([name, value]) => ` -H '${name}: ${value}'`)].join('')
  return `curl -i${flags} ${url.href}   # route ${r.name}`
}

/** Whether a listener bound to `host` takes connections to `to`. */
const reaches = (host: string, to: string): boolean => host === to || host === '0.0.0.0' || host === '::'

/** Where a client reaches a listener bound to `host`: loopback for the wildcard addresses. */
const address = (host: string): string => host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { config: DEMO_CONFIG })
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  const hints = await hintsFor(loaded)
  const started = await Promise.allSettled([startDemoUpstream('users', 3001), startDemoUpstream('orders', 3002)])
  const services = started.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  const failed = started.find(s => s.status === 'rejected')
  if (failed !== undefined) {
    for (const s of services) s.close()
    const err = failed.reason as Error & { code?: string, address?: string, port?: number }
    if (err.code !== 'EADDRINUSE') throw err
    console.error(`portcullis demo: cannot start a demo service on ${err.address ?? '127.0.0.1'}:${err.port ?? '?'}: the address is already in use. ` +
      'The demo needs 127.0.0.1:3001 and 127.0.0.1:3002 free (is a demo already running?).')
    return 1
  }
  console.log(`
Demo services are up${hints.length === 0 ? ` (${opts.config} has no route to suggest a request for: portcullis routes -c ${opts.config})` : `. Once the gateway says it is listening, try:

${hints.join('\n').replace(/^/gm, '  ')}`}

Stop with Ctrl-C.
`)
  const code = await start(['-c', opts.config])
  for (const s of services) s.close()
  return code
}
