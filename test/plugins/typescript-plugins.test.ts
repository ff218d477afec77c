import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { definePlugin, Type } from '../../src/index.ts'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError } from '../../src/config/config-error.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

const INDEX = JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)

t.test('a .ts plugin imports another .ts file as ./helper.js (TypeScript\'s NodeNext convention), or as ./helper.ts', async t => {
  const dir = t.testdir({
    'helper.ts': "export const HEADER: string = 'x-helped'\n",
    'lib': { 'value.mts': "export const VALUE: string = 'yes'\n" },
    'helped.ts': `import { definePlugin, Type } from ${INDEX}
import { HEADER } from './helper.js'
import { VALUE } from './lib/value.mjs'
export default definePlugin({ name: 'helped', priority: 100, schema: Type.Object({}), setup: () => ({ onResponse (res) { res.headers[HEADER] = VALUE } }) })
`,
    'plain.ts': `import { definePlugin, Type } from ${INDEX}
import { HEADER } from './helper.ts'
export default definePlugin({ name: 'plain', priority: 100, schema: Type.Object({}), setup: () => ({ onResponse (res) { res.headers[HEADER + '-too'] = 'yes' } }) })
`
  })
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`loadPlugins: [./helped.ts, ./plain.ts]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { helped: {}, plain: {} } }
`, { file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/a`)
  await res.body.dump()
  t.same([res.headers['x-helped'], res.headers['x-helped-too']], ['yes', 'yes'])
})

t.test('a user plugin named like a built-in: the error says it is a built-in\'s name', async t => {
  const dir = t.testdir({
    'cors.ts': `import { definePlugin, Type } from ${INDEX}
export default definePlugin({ name: 'cors', priority: 100, schema: Type.Object({}), setup: () => ({}) })
`,
    'twin.ts': `import { definePlugin, Type } from ${INDEX}
export default definePlugin({ name: 'helped', priority: 100, schema: Type.Object({}), setup: () => ({}) })
`
  })
  const file = join(dir, 'gateway.yaml')
  const err = await parseConfig(`server: { listen: { port: 8080 } }
loadPlugins: [./cors.ts, ./twin.ts, ./twin.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u }
`, file, {}).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.same((err as ConfigError).issues.map(i => `${i.path}: ${i.message}`), [
    'loadPlugins[0]: plugin "cors" is already defined: it is the name of a built-in plugin; give yours another',
    'loadPlugins[2]: plugin "helped" is already defined, by loadPlugins[1]'
  ])
})

t.test('ctx.credentials is typed by credentials.schema', async t => {
  // Checked by tsc (npx tsc --noEmit): a credential's fields need no cast.
  const plugin = definePlugin({
    name: 'typed',
    priority: 1500,
    schema: Type.Object({}),
    credentials: { schema: Type.Object({ tenant: Type.String() }) },
    setup (_config, ctx) {
      const tenants: string[] = ctx.credentials.map(c => c.credential.tenant)
      return { onRequest (req) { req.headers['x-tenants'] = tenants.join(',') } }
    }
  })
  t.equal(plugin.name, 'typed')
})
