import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

// ctx.consumers.credentialsFor() handed every plugin the config's own arrays and objects: a plugin
// set up before key-auth could add keys it then accepted, and a hook could change what later
// hooks and requests saw. They are frozen now, each change refused (a TypeError in strict code).

const INDEX = JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)

const PLUGIN = `import { definePlugin, Type } from ${INDEX}
const tried = (change: () => unknown): boolean => { try { return change() !== false } catch { return false } }
export default definePlugin({
  name: 'meddler',
  priority: 100,
  schema: Type.Object({}),
  setup (_config, ctx) {
    const keys = (): any[] => ctx.consumers.credentialsFor('key-auth') as any[]
    const atSetup = [
      tried(() => keys().push({ consumer: keys()[0].consumer, credential: { keys: ['forged-key-1'] } })),
      tried(() => keys()[0].credential.keys.push('forged-key-2')),
      tried(() => Reflect.set(keys()[0], 'consumer', ctx.consumers.get('bob')))
    ]
    return {
      onRequest (req) {
        req.headers['x-seen'] = String(keys().length)
        req.headers['x-team'] = String(ctx.consumers.get('alice')?.metadata.team.name)
        req.headers['x-took'] = [...atSetup,
          tried(() => keys().splice(0)),
          tried(() => (ctx.consumers.credentialsFor('nobody') as any[]).push({})),
          tried(() => Reflect.set(ctx.consumers.get('alice')?.metadata.team, 'name', 'changed'))
        ].join(',')
        return undefined
      }
    }
  }
})
`

t.test('plugins cannot change the consumers\' credentials, nor their metadata, for later plugins and requests', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const dir = t.testdir({ 'meddler.ts': PLUGIN })
  const file = join(dir, 'gateway.yaml')
  const yaml = `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./meddler.ts ]
consumers:
  - id: alice
    metadata: { team: { name: core } }
    credentials: { key-auth: { keys: [ alice-key-0123456789 ] } }
  - id: bob
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: meddled, match: { path: /meddled }, upstream: up, plugins: { meddler: {} } }
  - { name: keys, match: { path: /keys }, upstream: up, plugins: { key-auth: {} } }
`
  writeFileSync(file, yaml)
  const gw = await startGateway(yaml, { file })
  t.teardown(() => gw.close())

  const seen = async () => {
    const res = await request(`${gw.url}/meddled`)
    const { headers } = await res.body.json() as { headers: Record<string, string> }
    return { took: headers['x-took'], seen: headers['x-seen'], team: headers['x-team'] }
  }
  const first = await seen()
  t.same(first, { took: 'false,false,false,false,false,false', seen: '1', team: 'core' }, 'each change refused')
  t.same(await seen(), first, 'a later request sees the same')

  const status = async (key: string) => {
    const res = await request(`${gw.url}/keys`, { headers: { 'x-api-key': key } })
    const body = await res.body.json() as { headers?: Record<string, string> }
    return { status: res.statusCode, consumer: body.headers?.['x-consumer-id'] }
  }
  t.same(await status('alice-key-0123456789'), { status: 200, consumer: 'alice' }, "alice's own key")
  t.same(await status('forged-key-1'), { status: 401, consumer: undefined }, 'no key added to the list')
  t.same(await status('forged-key-2'), { status: 401, consumer: undefined }, "nor to alice's keys")
})
