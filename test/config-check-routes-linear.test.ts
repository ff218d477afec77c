import t from 'tap'
import { checkConfig } from '../src/config/check.ts'
import { parseConfig } from '../src/config/load.ts'
import type { GatewayConfig } from '../src/config/schema.ts'

// Each route's request-headers and auth checks ask for every jwt-auth config of the whole config
// (PluginCheckRoute.configsOf). Each ask walked every route: the checks grew as routes × routes,
// seconds of main thread per reload at a few thousand routes. How often the checks read a route's
// plugins, counted at two sizes, shows the growth without timing anything.

const SECRET = 'a-shared-secret-of-at-least-32-characters!'

/** A valid config of `n` routes: each with key-auth, every other one with its own request-headers (the others get the top-level one), the last forwarding a claim. */
function configText (n: number): string {
  let text = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  request-headers: { set: { x-gateway: portcullis } }
routes:
`
  for (let i = 0; i < n; i++) {
    const own = i % 2 === 0 ? `, request-headers: { set: { x-route: r${i} } }` : ''
    const jwt = i === n - 1 ? `, jwt-auth: { secret: "${SECRET}", forwardClaims: { sub: x-user-id } }` : ''
    text += `  - { name: r${i}, match: { path: "/r${i}/:id" }, upstream: up, plugins: { key-auth: {}${own}${jwt} } }\n`
  }
  return text
}

/** How many times checkConfig reads a route's `plugins` for a config of `n` routes, and the problems it finds. */
async function pluginReads (n: number): Promise<{ reads: number, problems: unknown[] }> {
  const loaded = await parseConfig(configText(n), 'gw.yaml', {})
  let reads = 0
  const routes = loaded.config.routes.map(r => new Proxy(r, {
    get (target, key, receiver) {
      if (key === 'plugins') reads++
      return Reflect.get(target, key, receiver) as unknown
    }
  }))
  // A config object of its own: nothing the load's checks worked out for it is reused.
  const config: GatewayConfig = { ...loaded.config, routes }
  const problems = checkConfig(config, loaded.plugins, '.')
  return { reads, problems }
}

t.test('the plugin checks read each route a bounded number of times: twice the routes, at most twice the reads', async t => {
  const small = await pluginReads(100)
  const large = await pluginReads(200)
  t.same(small.problems, [])
  t.same(large.problems, [])
  t.ok(small.reads >= 100, `every route read (${small.reads})`)
  // Linear: 2×; a walk of every route per route: 4×.
  t.ok(large.reads <= 2 * small.reads, `100 routes: ${small.reads} reads; 200 routes: ${large.reads}`)
})

t.test('the checks still see every route\'s configs: a claim forwarded on the last route is refused on the first', async t => {
  const text = configText(50).replace('request-headers: { set: { x-route: r0 } }', 'request-headers: { rename: { x-note: x-user-id } }')
  await t.rejects(parseConfig(text, 'gw.yaml', {}), { message: /routes\[0\]\.plugins\.request-headers\.rename\.x-note: "x-user-id" carries a claim jwt-auth verified/ })
})

t.test('with jwt-auth forwarding a claim on every route, its configs are read a bounded number of times too', async t => {
  /** How many times checkConfig reads a jwt-auth config's forwardClaims, for `n` routes each with jwt-auth and key-auth. */
  const claimReads = async (n: number): Promise<number> => {
    const text = configText(n).replace(/, jwt-auth: \{[^}]*\{[^}]*\} \}/, '').replace(/plugins: \{ key-auth: \{\}/g, `plugins: { key-auth: {}, jwt-auth: { secret: "${SECRET}", forwardClaims: { sub: x-user-id } }`)
    const loaded = await parseConfig(text, 'gw.yaml', {})
    let reads = 0
    const routes = loaded.config.routes.map(r => {
      const plugins = r.plugins as Record<string, unknown>
      const jwt = new Proxy(plugins['jwt-auth'] as object, {
        get (target, key, receiver) {
          if (key === 'forwardClaims') reads++
          return Reflect.get(target, key, receiver) as unknown
        }
      })
      return { ...r, plugins: { ...plugins, 'jwt-auth': jwt } }
    })
    t.same(checkConfig({ ...loaded.config, routes } as GatewayConfig, loaded.plugins, '.'), [])
    return reads
  }
  const small = await claimReads(100)
  const large = await claimReads(200)
  t.ok(small >= 100, `every config read (${small})`)
  t.ok(large <= 2.5 * small, `100 routes: ${small} reads; 200 routes: ${large}`)
})
