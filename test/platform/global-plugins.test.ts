import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { describeRoute } from '../../src/runtime/describe-route.ts'
import { formatStep } from '../../src/plugins/describe-step.ts'

const seen = async (url: string) => (await (await request(url)).body.json() as { headers: Record<string, string | undefined> }).headers

t.test('a top-level plugin applies to every route; a route entry replaces it; name: false turns it off', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`plugins:
  request-headers: { set: { x-from: global } }
  response-headers: { set: { x-served-by: portcullis } }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: plain, match: { path: /plain }, upstream: u }
  - { name: own, match: { path: /own }, upstream: u, plugins: { request-headers: { set: { x-from: route } } } }
  - { name: off, match: { path: /off }, upstream: u, plugins: { request-headers: false } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })

  t.equal((await seen(`${gw.url}/plain`))['x-from'], 'global')
  t.equal((await seen(`${gw.url}/own`))['x-from'], 'route', 'the route\'s own config replaces the top-level one')
  t.equal((await seen(`${gw.url}/off`))['x-from'], undefined, 'turned off on this route')
  const off = await request(`${gw.url}/off`)
  await off.body.dump()
  t.equal(off.headers['x-served-by'], 'portcullis', 'only the plugin named false is off')

  const routes = Object.fromEntries(gw.gateway.runtime.routes.map(r => [r.name, describeRoute(r).plugins.map(formatStep)]))
  t.same(routes, {
    plain: ['response-headers (5000, global)', 'request-headers (800, global)'],
    own: ['response-headers (5000, global)', 'request-headers (800)'],
    off: ['response-headers (5000, global)']
  }, 'routes and explain show each plugin\'s priority and where its config came from')
})
