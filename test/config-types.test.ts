import t from 'tap'
import type { Worker } from 'node:worker_threads'
import { request } from 'undici'
import { OFF_THREAD_CHARS, parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'
import { runCliHere } from './helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './reload/helpers.ts'

// Ajv's coerceTypes is there for strings (${VAR}s, quoted values); it once also read trustProxy: 1 as
// true (every peer trusted: any client could name its own address), port: true as 1, and turned
// unquoted numbers where text is asked for into JavaScript's spelling (x-version: 1.10 sent as 1.1).

/** A config whose server section holds `server` (lines 1-2, then its lines), and its one route's plugins. */
const config = (server: string, plugins = '{}', extra = ''): string => `server:
  listen: { host: 127.0.0.1, port: 0 }
${server}${extra}upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: u
    plugins: ${plugins}
`

t.test('a number is never read as a boolean, nor a boolean as a number: an error at the value', async t => {
  t.same(await issues(t, config('  trustProxy: 1\n')), [
    'gw.yaml:3:15 server.trustProxy: must be true, false, or a list of trusted proxy addresses/CIDRs (1 is a number, never read as true or false)'
  ])
  t.same(await issues(t, config('  trustProxy: 0\n  http2: 1\n  shutdownTimeout: true\n')), [
    'gw.yaml:3:15 server.trustProxy: must be true, false, or a list of trusted proxy addresses/CIDRs (0 is a number, never read as true or false)',
    'gw.yaml:4:10 server.http2: must be true, false, or an object of HTTP/2 settings (1 is a number, never read as true or false)',
    'gw.yaml:5:20 server.shutdownTimeout: must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m (true is a boolean, never read as a number)'
  ])
  for (const port of ['true', 'false']) {
    t.same(await issues(t, config('').replace('port: 0', `port: ${port}`)), [
      `gw.yaml:2:36 server.listen.port: must be an integer (${port} is a boolean, never read as a number)`
    ], `port: ${port}`)
  }
})

t.test('a string still becomes the number or boolean asked for: a ${VAR}\'s, or one quoted', async t => {
  const text = config('  trustProxy: "${TRUST}"\n  shutdownTimeout: "${GRACE}"\n').replace('port: 0', 'port: "${PORT}"')
  const loaded = await parseConfig(text, 'gw.yaml', { TRUST: 'true', GRACE: '1500', PORT: '8080' })
  t.same([loaded.config.server.trustProxy, loaded.config.server.shutdownTimeout, loaded.config.server.listen.port], [true, 1500, 8080])
  const quoted = await parseConfig(config('  trustProxy: "false"\n').replace('port: 0', 'port: "0"'), 'gw.yaml', {})
  t.same([quoted.config.server.trustProxy, quoted.config.server.listen.port], [false, 0])
  const typed = await parseConfig(config('  trustProxy: true\n  shutdownTimeout: 2000\n'), 'gw.yaml', {})
  t.same([typed.config.server.trustProxy, typed.config.server.shutdownTimeout], [true, 2000], 'a boolean or number where one is asked for, as is')
})

t.test('where text is asked for, a number or boolean is taken as written: header values, names, keys, the admin token', async t => {
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: 12345678901234567890123
upstreams:
  1e3: { targets: [ { url: "http://127.0.0.1:1" } ] }
  007: { targets: [ { url: "http://127.0.0.1:2" } ] }
routes:
  - name: 1e3
    match: { path: /a/* }
    upstream: 1e3
    plugins: { request-headers: { set: { x-version: &v 1.10, x-octal: 0o17, x-flag: TRUE, x-plain: 5, x-hex: 0x1F } } }
  - name: 007
    match: { path: /b/* }
    upstream: 007
    plugins: { response-headers: { set: { x-version: *v } } }
`, 'gw.yaml', {})
  const { config: c } = loaded
  t.equal(c.admin?.token, '12345678901234567890123', 'the token keeps its digits')
  t.same(Object.keys(c.upstreams), ['1e3', '007'], 'keys as written')
  t.same(c.routes.map(r => [r.name, r.upstream]), [['1e3', '1e3'], ['007', '007']])
  t.same(c.routes[0]?.plugins?.['request-headers'], { set: { 'x-version': '1.10', 'x-octal': '0o17', 'x-flag': 'TRUE', 'x-plain': '5', 'x-hex': '0x1F' } })
  t.same(c.routes[1]?.plugins?.['response-headers'], { set: { 'x-version': '1.10' } }, 'through an alias too')
})

t.test('a large config, parsed in a worker thread: numbers taken as written, and refused as on the main thread', async t => {
  const routes = Array.from({ length: 700 }, (_, i) => `  - name: p${i}
    match: { path: /p${i}/* }
    upstream: u
    plugins: { request-headers: { set: { x-version: 1.10 } } }
`).join('')
  const text = config('') + routes
  t.ok(text.length > OFF_THREAD_CHARS)
  const answers: unknown[] = []
  const started = (w: Worker): void => { w.once('message', (m: unknown) => answers.push(m)) }
  process.on('worker', started)
  t.teardown(() => { process.off('worker', started) })
  const loaded = await parseConfig(text, 'gw.yaml', {})
  t.equal(answers.length, 1)
  t.not(answers[0], undefined, 'the worker\'s answer was used')
  t.same(loaded.config.routes[700]?.plugins, { 'request-headers': { set: { 'x-version': '1.10' } } })
  t.same(await issues(t, config('  trustProxy: 1\n') + routes), [
    'gw.yaml:3:15 server.trustProxy: must be true, false, or a list of trusted proxy addresses/CIDRs (1 is a number, never read as true or false)'
  ])
})

t.test('trustProxy: 1 is refused by portcullis validate and by a reload: X-Forwarded-For from a client stays unbelieved', async t => {
  const up = await namedUpstream('app')
  const good = gatewayYaml({ app: [up.url] }, `  - name: x
    match: { path: /x }
    upstream: app
    plugins: { ip-filter: { deny: [203.0.113.0/24] } }`)
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([up.close(), cf.remove()]) })
  const spoofed = async (): Promise<number> => (await request(`${gw.url}/x`, { headers: { 'x-forwarded-for': '203.0.113.5' } }).then(async r => { await r.body.dump(); return r })).statusCode

  t.equal(await spoofed(), 200, 'a direct client\'s X-Forwarded-For is not its address')
  await cf.write(good.replace('  listen: { host: 127.0.0.1, port: 0 }\nadmin', '  listen: { host: 127.0.0.1, port: 0 }\n  trustProxy: 1\nadmin'))
  const run = await runCliHere('validate', '-c', cf.file)
  t.same([run.code, run.stderr.trim().split('\n')], [1, [
    'invalid configuration (1 problem):',
    `${cf.file}:3:15 server.trustProxy: must be true, false, or a list of trusted proxy addresses/CIDRs (1 is a number, never read as true or false)`
  ]])
  t.equal((await gw.reloader.reload('admin')).result, 'invalid')
  t.equal(await spoofed(), 200, 'still not believed after the reload was refused')
})
