/**
 * The files `portcullis plugin new NAME` writes: a working plugin, its schema, its test, and a
 * package.json that makes tsc (module NodeNext) compile them as ES modules, as the gateway loads them.
 */
export function pluginFiles (name: string): Record<string, string> {
  return {
    'schema.ts': `import { Type, type Static } from 'portcullis'

// Every field has a description (editors show it) and a default (so \`${name}: {}\` works).
export const schema = Type.Object({
  header: Type.String({ description: 'Response header to set.', default: 'x-${name}' }),
  value: Type.String({ description: 'Its value.', default: 'on' })
}, { additionalProperties: false })

export type Config = Static<typeof schema>
`,
    'index.ts': `import { definePlugin } from 'portcullis'
import { schema, type Config } from './schema.ts'

export default definePlugin({
  name: '${name}',
  // Bands: 3000+ access control, 1000-2999 authentication, 990 acl, 900-989 rate limiting,
  // 800-899 request transforms, 100-799 caching and traffic control, below 100 response transforms.
  priority: 50,
  schema,
  // Runs once per route when the config is loaded: prepare everything here, not per request.
  // log: this route's logger; its lines already carry route and plugin.
  setup (config: Config, { log }) {
    log.debug({ header: config.header }, '${name} ready')
    return {
      onResponse (res) { res.headers[config.header] = config.value }
    }
  }
})
`,
    [`${name}.test.ts`]: `// Run: node --import <portcullis>/dist/src/plugins/register-plugin-hooks.js --test ${name}.test.ts
// (\`portcullis plugin new\` printed the exact command.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createLogger, parseConfig, startPortcullis } from 'portcullis'

test('${name} sets its header on responses through a real gateway', async t => {
  const upstream = createServer((_req, res) => res.end('hello'))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.after(() => upstream.close())
  const { port } = upstream.address() as { port: number }

  const config = \`server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [./index.ts]
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:\${port}" } ] }
routes:
  - name: app
    match: { path: /* }
    upstream: app
    plugins:
      ${name}: { header: x-test, value: yes }
\`
  // The file name anchors loadPlugins: ./index.ts is this folder's.
  const loaded = await parseConfig(config, fileURLToPath(new URL('./gateway.yaml', import.meta.url)))
  const gateway = await startPortcullis(loaded, createLogger({ level: 'silent', pretty: false }))
  t.after(() => gateway.close())

  const res = await fetch(\`\${gateway.url}/anything\`)
  assert.equal(res.status, 200)
  assert.equal(await res.text(), 'hello')
  assert.equal(res.headers.get('x-test'), 'yes')
})
`,
    'package.json': '{ "type": "module" }\n'
  }
}
