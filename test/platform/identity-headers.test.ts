import t from 'tap'
import { request } from 'undici'
import { headerValue } from '../../src/index.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

t.test('header values the upstream reads back exactly with decodeURIComponent', async t => {
  const cases: Array<[unknown, string]> = [
    ['alice', 'alice'],
    ['one\ttwo', 'one\ttwo'],
    ['100%', '100%25'],
    ['%41lice', '%2541lice'],
    [' alice', '%20alice'],
    ['alice ', 'alice%20'],
    ['a\r\nb', 'a%0D%0Ab'],
    ['Zoë', 'Zo%C3%AB'],
    [['a', 'b,c', ' d'], 'a,b%2Cc,%20d'],
    [7, '7'],
    [{ id: '%' }, '%7B%22id%22%3A%22%25%22%7D']
  ]
  for (const [value, sent] of cases) {
    t.equal(headerValue(value), sent, JSON.stringify(value))
    if (typeof value === 'string') t.equal(decodeURIComponent(headerValue(value)), value, 'read back')
  }
})

const INDEX = JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)

/** A user auth plugin: the consumer named by x-user, set on req.consumer and nothing else; x-seen-id: the x-consumer-id its hook saw. */
const userPlugin = (name: string, priority: number) => `import { definePlugin, Type } from ${INDEX}
export default definePlugin({
  name: ${JSON.stringify(name)},
  priority: ${priority},
  schema: Type.Object({ async: Type.Optional(Type.Boolean()) }),
  setup (config, ctx) {
    const recognise = req => {
      req.headers['x-seen-by-${name}'] = String(req.headers['x-consumer-id'])
      const user = req.clientHeaders['x-user']
      if (typeof user === 'string') req.consumer = ctx.consumers.get(user)
    }
    return { onRequest: config.async === true ? async req => { await new Promise(resolve => setImmediate(resolve)); recognise(req) } : recognise }
  }
})
`

t.test('a plugin that sets req.consumer gets the identity headers the built-in auth plugins send, client ones removed', async t => {
  const dir = t.testdir({ 'who.ts': userPlugin('who', 1300), 'later.ts': userPlugin('later', 1200), 'early.ts': userPlugin('early', 1500) })
  const up = await startUpstream()
  const gw = await startGateway(`loadPlugins: [ ./who.ts, ./later.ts, ./early.ts ]
consumers:
  - { id: alice, groups: [staff] }
  - { id: "100% bob", groups: ["ops,admins"] }
  - { id: guest, credentials: { key-auth: { keys: ["\${GUEST_KEY}"] } } }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: sync, match: { path: /sync }, upstream: u, plugins: { who: {}, later: {} } }
  - { name: async, match: { path: /async }, upstream: u, plugins: { who: { async: true } } }
  - { name: renamed, match: { path: /renamed }, upstream: u, plugins: { who: {}, request-headers: { rename: { x-consumer-id: x-user-id } } } }
  - { name: after-anonymous, match: { path: /after-anonymous }, upstream: u, plugins: { key-auth: { anonymous: guest }, later: {} } }
  - { name: before-optional, match: { path: /before-optional }, upstream: u, plugins: { early: {}, jwt-auth: { secret: "${'s'.repeat(32)}", optional: true } } }
`, { file: `${dir}/gateway.yaml`, env: { GUEST_KEY: 'guest-key-0123456789' } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const seen = async (path: string, headers: Record<string, string>) =>
    (await (await request(`${gw.url}${path}`, { headers })).body.json() as { headers: Record<string, string | undefined> }).headers
  const forged = { 'x-consumer-id': 'root', 'x-consumer-groups': 'admins', x_consumer_id: 'root2', 'x-consumer-username': 'root', 'x-anonymous-consumer': 'true' }
  const identity = (h: Record<string, string | undefined>) => Object.fromEntries(Object.entries(h).filter(([k]) => /^x[-_](consumer|anonymous)/.test(k)))

  for (const path of ['/sync', '/async']) {
    const h = await seen(path, { 'x-user': 'alice', ...forged })
    t.same(identity(h), { 'x-consumer-id': 'alice', 'x-consumer-groups': 'staff' }, `${path}: the consumer's, none of the client's`)
  }
  t.equal((await seen('/sync', { 'x-user': 'alice', ...forged }))['x-seen-by-later'], 'alice', 'the next plugin already sees them')
  t.same(identity(await seen('/sync', { 'x-user': '100% bob', ...forged })), { 'x-consumer-id': '100%25%20bob', 'x-consumer-groups': 'ops%2Cadmins' },
    'encoded as the built-ins encode them')

  const renamed = await seen('/renamed', { 'x-user': 'alice', ...forged })
  t.equal(renamed['x-user-id'], 'alice', 'request-headers renames the gateway\'s header, not the client\'s')

  const anonymousFirst = await seen('/after-anonymous', { 'x-user': 'alice', ...forged })
  t.same(identity(anonymousFirst), { 'x-consumer-id': 'alice', 'x-consumer-groups': 'staff' }, 'key-auth\'s anonymous guest replaced: no x-anonymous-consumer left')
  const guest = await seen('/after-anonymous', forged)
  t.same(identity(guest), { 'x-consumer-id': 'guest', 'x-anonymous-consumer': 'true' }, 'the built-in\'s own headers stay when no later plugin changes the consumer')

  t.same(identity(await seen('/before-optional', { 'x-user': 'alice', ...forged })), { 'x-consumer-id': 'alice', 'x-consumer-groups': 'staff' },
    'optional auth without a token keeps the consumer an earlier plugin recognised')
  t.same(identity(await seen('/before-optional', forged)), {}, 'and without one, the client\'s identity headers still go')

  t.same(identity(await seen('/sync', forged)), {}, 'no consumer set: the client\'s identity headers are gone all the same')
})

t.test('a consumer that cannot be a header (a BigInt id) is the setting plugin\'s failure, and the request keeps no consumer', async t => {
  const dir = t.testdir({
    'bigid.ts': `import { definePlugin, Type } from ${INDEX}
export default definePlugin({
  name: 'bigid', priority: 1300, schema: Type.Object({}),
  setup () { return { onRequest (req) { req.consumer = { id: 10n, groups: [] } } } }
})
`,
    'watch.ts': `import { definePlugin, Type } from ${INDEX}
export const seen = []
export default definePlugin({
  name: 'watch', priority: 100, schema: Type.Object({}),
  setup () { return { onFinished (req) { seen.push(req.consumer === undefined ? 'none' : typeof req.consumer.id) } } }
})
`
  })
  const up = await startUpstream()
  const gw = await startGateway(`loadPlugins: [ ./bigid.ts, ./watch.ts ]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: big, match: { path: /big }, upstream: u, plugins: { bigid: {}, watch: {} } }
`, { file: `${dir}/gateway.yaml` })
  t.teardown(async () => { await gw.close(); await up.close() })
  const res = await request(`${gw.url}/big`)
  t.equal(res.statusCode, 500)
  t.match(await res.body.json(), { error: 'plugin_error' })
  const { seen } = await import(`${dir}/watch.ts`) as { seen: string[] }
  await t.resolveMatch(waitForSeen(seen), ['none'], 'onFinished sees no consumer: the refused one is gone')
  t.equal((await request(`${gw.url}/big`)).statusCode, 500, 'and the gateway still answers')
})

async function waitForSeen (seen: string[]): Promise<string[]> {
  while (seen.length === 0) await new Promise(resolve => setImmediate(resolve))
  return seen
}
