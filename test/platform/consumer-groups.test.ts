import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

t.test('a group listed twice for a consumer is sent upstream once', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`
consumers:
  - { id: alice, groups: [admins, staff, admins], credentials: { key-auth: { keys: ["\${ALICE_KEY}"] } } }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { key-auth: {} } }
`, { env: { ALICE_KEY: 'alice-key-0123456789abcdef' } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const res = await request(`${gw.url}/r`, { headers: { 'x-api-key': 'alice-key-0123456789abcdef' } })
  const seen = await res.body.json() as { headers: Record<string, string> }
  t.equal(res.statusCode, 200)
  t.equal(seen.headers['x-consumer-groups'], 'admins,staff', 'in the order first listed')
})
