import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// A cached token's claims are one object on each of its requests (req.locals.claims): frozen, so
// that a later plugin's write cannot show on the token's next request. A plugin of the test's own
// writes into them and says what it saw before, and whether the write went through.

const INDEX = new URL('../../src/index.ts', import.meta.url).href
const WRITER = `
import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'claims-writer',
  priority: 1400,
  schema: Type.Object({}),
  setup () {
    return {
      onRequest (req) {
        const claims = req.locals.claims
        if (claims === undefined) throw new Error('no claims')
        req.headers['x-seen'] = encodeURIComponent(JSON.stringify(claims))
        const refused = []
        const tries = { top: () => { claims.role = 'admin' }, nested: () => { claims.groups.push('admins') }, deep: () => { claims.org.team.name = 'root' } }
        for (const [name, write] of Object.entries(tries)) { try { write() } catch { refused.push(name) } }
        req.headers['x-refused'] = refused.join(',')
      }
    }
  }
})
`

const rsa = await signingKey('RS256', 'rsa-1')
const up = await startUpstream()
t.teardown(() => up.close())

t.test('claims cannot be written into, at any depth, so the next request with the token sees them as signed', async t => {
  const dir = t.testdir({ 'claims-writer.ts': WRITER })
  const gw = await startGateway(`loadPlugins: [ ./claims-writer.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: api, match: { path: /api }, upstream: up, plugins: { jwt-auth: { keys: [ ${JSON.stringify(rsa.pem)} ] }, claims-writer: {} } }
`, { file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const token = await mint(rsa, { sub: 'alice', groups: ['staff'], org: { team: { name: 'ops' } } })
  const seen = async () => {
    const res = await request(`${gw.url}/api`, { headers: { authorization: `Bearer ${token}` } })
    const { headers } = await res.body.json() as { headers: Record<string, string> }
    const claims = JSON.parse(decodeURIComponent(headers['x-seen'] as string)) as Record<string, unknown>
    return { status: res.statusCode, role: claims.role, groups: claims.groups, org: claims.org, refused: headers['x-refused'] }
  }
  const expected = { status: 200, role: undefined, groups: ['staff'], org: { team: { name: 'ops' } }, refused: 'top,nested,deep' }
  t.same(await seen(), expected, 'the first request: each write refused')
  t.same(await seen(), expected, 'the next, from the cache: the claims as signed')
})
