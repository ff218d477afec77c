import t from 'tap'
import { rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile, startupGate, waitFor, WATCH_SETTLE_MS } from './helpers.ts'

const route = (name: string, path: string, upstream: string) => `  - { name: ${name}, match: { path: "${path}" }, upstream: ${upstream} }`

/** The body the gateway returns for `path`, or its status when not 200. */
async function served (url: string, path: string): Promise<string> {
  const res = await request(url + path)
  const body = await res.body.text()
  return res.statusCode === 200 ? body : `status ${res.statusCode}`
}

t.test('file changes are picked up: in-place writes and write-via-rename', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), b.close(), cf.remove()]) })
  t.equal(await served(gw.url, '/api'), 'a')

  await cf.write(gatewayYaml({ b: [b.url] }, route('api', '/api', 'b')))
  t.equal(await waitFor(async () => await served(gw.url, '/api') === 'b' ? 'b' : undefined), 'b', 'in-place write applied')

  // Several saves via rename; each replaces the inode. All must be seen, the last one must win.
  for (const [i, up] of [a, b, a].entries()) {
    await cf.replace(gatewayYaml({ u: [up.url] }, route('api', '/api', 'u') + '\n' + route(`extra${i}`, `/extra${i}`, 'u')))
    const path = `/extra${i}`
    t.ok(await waitFor(async () => await served(gw.url, path) !== 'status 404' ? true : undefined), `rename save ${i} applied`)
  }
  t.equal(await served(gw.url, '/api'), 'a')
  t.equal(await served(gw.url, '/extra1'), 'status 404', 'routes of earlier saves are gone')
  const reloads = gw.logs.filter(l => l.msg === 'config reloaded')
  t.ok(reloads.every(l => l.trigger === 'file'), 'each logged as a file-triggered reload')
  t.ok(reloads.length >= 4 && reloads.length <= 8, `debounced: ${reloads.length} reloads for 4 saves`)
})

t.test('POST /config/reload applies the file and answers with the new hash', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), b.close(), cf.remove()]) })
  const before = gw.gateway.runtime.loaded.hash

  await cf.write(gatewayYaml({ b: [b.url] }, route('api', '/api', 'b')))
  // Asserting that nothing happens: wait past the watcher's 150 ms debounce, which a watching gateway would have acted on.
  await sleep(WATCH_SETTLE_MS)
  t.equal(await served(gw.url, '/api'), 'a', 'not watching: nothing changes until asked')
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  t.equal(res.statusCode, 200)
  const body = await res.body.json() as { result: string, hash: string, trigger: string }
  t.equal(body.result, 'success')
  t.equal(body.trigger, 'admin')
  t.not(body.hash, before)
  t.equal(body.hash, gw.gateway.runtime.loaded.hash, 'the answered hash is the active one')
  t.equal(await served(gw.url, '/api'), 'b')

  const config = await (await request(`${gw.adminUrl}/config`)).body.json() as { hash: string, lastReload: { result: string } }
  t.equal(config.hash, body.hash)
  t.equal(config.lastReload.result, 'success')
})

t.test('an invalid config is rejected whole: logged with file:line:col, reported, counted; the old one serves', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('api', '/api', 'a'))
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  // Second route is broken (unknown upstream); the first one alone would be valid.
  const bad = gatewayYaml({ a: [a.url] }, route('api2', '/api2', 'a') + '\n' + route('bad', '/bad', 'nope'))
  const badLine = bad.split('\n').findIndex(l => l.includes('nope')) + 1
  await cf.replace(bad)
  const logged = await waitFor(() => gw.logs.find(l => l.msg?.toString().startsWith('config reload rejected')))
  t.ok(logged, 'the rejection is logged')
  t.match((logged?.issues as string[])[0], new RegExp(`^${cf.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ routes\\[1\\]\\.upstream: unknown upstream "nope"`))
  t.equal(await served(gw.url, '/api'), 'a', 'old config still serves')
  t.equal(await served(gw.url, '/api2'), 'status 404', 'no part of the rejected file went live')

  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  t.equal(res.statusCode, 422)
  const body = await res.body.json() as { error: string, issues: Array<{ line: number, col: number, path: string }> }
  t.equal(body.error, 'invalid_config')
  t.match(body.issues, [{ path: 'routes[1].upstream', line: badLine, col: Number }])

  const config = await (await request(`${gw.adminUrl}/config`)).body.json() as { lastReload: { result: string, trigger: string, issues: unknown[] } }
  t.match(config.lastReload, { result: 'invalid', trigger: 'admin' })
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.match(metrics, /portcullis_config_reloads_total\{result="invalid"\} 2/, 'file event and admin call both counted')

  await cf.replace(good.replace('/api"', '/fixed"'))
  t.equal(await waitFor(async () => await served(gw.url, '/fixed') === 'a' ? 'ok' : undefined), 'ok', 'a fixed file goes live')
  t.match(await (await request(`${gw.adminUrl}/metrics`)).body.text(), /portcullis_config_reloads_total\{result="success"\} 1/)
})

t.test('a reload quotes no secret of the file: mistyped target URLs, an error naming a URL; not in the answer, GET /config or the log', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const reload = async () => {
    const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
    return { status: res.statusCode, body: await res.body.text() }
  }
  const lastReload = async () => JSON.stringify((await (await request(`${gw.adminUrl}/config`)).body.json() as { lastReload: unknown }).lastReload)

  await cf.write(gatewayYaml({ a: ['htp://svc:SECRETPW@127.0.0.1:1', 'svc:SECRETPW@127.0.0.1:2', 'http:/svc:SECRETPW@127.0.0.1:3', 'http://127.0.0.1:4/x?token=SECRETTOK'] },
    route('api', '/api', 'a')))
  const invalid = await reload()
  t.equal(invalid.status, 422)
  t.match(JSON.parse(invalid.body), { issues: [
    { message: '"htp://[redacted]@127.0.0.1:1": the scheme must be http:// or https://, not htp://' },
    { message: '"[redacted]@127.0.0.1:2" has no scheme: write http://[redacted]@127.0.0.1:2 (or https://)' },
    { message: '"http:/[redacted]@127.0.0.1:3" is missing "://" after "http": write http://[redacted]@127.0.0.1:3' },
    { message: '"http://127.0.0.1:4/x?token=[redacted]" has a path ("/x?token=[redacted]") after the host and port' }
  ] })
  t.notMatch(invalid.body, /SECRET|svc/, 'the answer')
  t.notMatch(await lastReload(), /SECRET|svc/, 'GET /config')
  t.match(await lastReload(), /"result":"invalid"/)

  // A plugin's error naming a URL with its credentials (a JWKS address, say): shown redacted.
  writeUserPlugin(cf.dir, 'leaky', 500, "(() => { throw new Error('cannot fetch https://svc:SECRETPW@idp.example/jwks?access_token=SECRETTOK') })()")
  await cf.write(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { leaky: {} } }', 'loadPlugins: [ ./leaky.ts ]'))
  const failed = await reload()
  t.equal(failed.status, 500)
  t.match(failed.body, 'cannot fetch https://[redacted]@idp.example/jwks?access_token=[redacted]')
  t.notMatch(failed.body, /SECRET|svc/, 'the answer')
  t.notMatch(await lastReload(), /SECRET|svc/, 'GET /config')
  t.match(await lastReload(), /"result":"failed"/)
  t.notMatch(JSON.stringify(gw.logs.filter(l => l.msg?.toString().startsWith('config reload rejected'))), /SECRET|svc/, 'the rejection logged')
})

t.test('a reload hides a URL password holding ? # / @ : a space or non-ASCII: store and target URLs, in the answer, GET /config and the log', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const passwords = ['SEC?RET!', 'SEC#RET', 'SEC/RET', 'SEC RET', 'SEC@RET', 'SEC:RET', 'SËC✓RET', 'S?E#C/R@E:T w']
  const stores = passwords.map((pw, i) => `  r${i}: { type: redis, url: "redis://user:${pw}@127.0.0.1:99999" }\n  q${i}: { type: redis, url: "redis://:${pw}@127.0.0.1:6379/0" }`)
  await cf.write(gatewayYaml(Object.fromEntries(passwords.map((pw, i) => [`u${i}`, [`http://user:${pw}@127.0.0.1:3000`]])), route('api', '/api', 'u0'),
    `stores:\n${stores.join('\n')}`))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  const body = await res.body.text()
  t.equal(res.statusCode, 422)
  const messages = (JSON.parse(body) as { issues: Array<{ message: string }> }).issues.map(i => i.message)
  t.equal(messages.filter(m => m.startsWith('"http://[redacted]@127.0.0.1:3000" has a user or password')).length, passwords.length, 'every target named, hidden')
  t.equal(messages.filter(m => m.startsWith('"redis://[redacted]@127.0.0.1:99999": port 99999 is out of range')).length, passwords.length, 'every store named, hidden')
  t.notMatch(body, /SEC|RET|S\?E/, 'the answer')
  const config = await (await request(`${gw.adminUrl}/config`)).body.text()
  t.match(config, /"result":"invalid"/)
  t.notMatch(config, /SEC|RET|S\?E/, 'GET /config')
  const logged = JSON.stringify(gw.logs.filter(l => l.msg?.toString().startsWith('config reload rejected')))
  t.match(logged, /redacted/)
  t.notMatch(logged, /SEC|RET|S\?E/, 'the rejection logged')
})

t.test('listener addresses cannot change on reload', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.write(gatewayYaml({ a: [a.url] }, route('moved', '/moved', 'a')).replace('host: 127.0.0.1, port: 0 }\nadmin', 'host: 127.0.0.1, port: 1 }\nadmin'))
  const status = await gw.reloader.reload('signal')
  t.equal(status.result, 'invalid')
  t.match(status.issues, [{ path: 'server.listen', line: 2, message: /listener address cannot change on reload.*still listening on 127\.0\.0\.1:0/ }])
  t.equal(await served(gw.url, '/api'), 'a')
})

// The logger is built once, at start: a reload that changed logging.pretty was taken, and ignored.
t.test('logging.pretty cannot change on reload; the level can', async t => {
  const a = await namedUpstream('a')
  const yaml = (logging: string) => `${gatewayYaml({ a: [a.url] }, route('api', '/api', 'a'))}logging: ${logging}\n`
  const cf = await configFile(yaml('{ level: info }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  // Not a terminal here: JSON lines, as pretty: false says.
  await cf.write(yaml('{ level: info, pretty: true }'))
  const status = await gw.reloader.reload('signal')
  t.equal(status.result, 'invalid')
  t.match(status.issues, [{ path: 'logging.pretty', line: 10, message: /^logging\.pretty cannot change on reload.*logs are still JSON lines$/ }])
  await cf.write(yaml('{ level: debug, pretty: false }'))
  t.equal((await gw.reloader.reload('signal')).result, 'success', 'pretty: false is what the default gave; the level reloads')
})

t.test('turning HTTP/2 off or moving h2c cannot happen on reload; its limits can', async t => {
  const a = await namedUpstream('a')
  const yaml = (http2: string) => gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')).replace('port: 0 }\nadmin', `port: 0 }\n  http2: ${http2}\nadmin`)
  const cf = await configFile(yaml('{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.write(yaml('{ h2c: { listen: { host: 127.0.0.1, port: 1 } } }'))
  let status = await gw.reloader.reload('signal')
  t.equal(status.result, 'invalid')
  t.match(status.issues, [{ path: 'server.http2.h2c.listen', line: 3, message: /h2c listener cannot change on reload.*still listening on 127\.0\.0\.1:0/ }])
  await cf.write(yaml('false'))
  status = await gw.reloader.reload('signal')
  t.equal(status.result, 'invalid')
  t.match(status.issues, [{ path: 'server.http2', line: 3, message: /turning HTTP\/2 off cannot change on reload/ }])
  await cf.write(yaml('{ h2c: { listen: { host: 127.0.0.1, port: 0 } }, maxConcurrentStreams: 10 }'))
  t.equal((await gw.reloader.reload('signal')).result, 'success', 'a limit reloads')
})

t.test('an edited plugin file keeps its old code on reload, and a warning says so', async t => {
  const a = await namedUpstream('a')
  const dir = t.testdir({})
  const plugin = writeUserPlugin(dir, 'stamp', 500, "{ onRequest: () => ({ status: 200, body: 'v1' }) }")
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, 'loadPlugins: [ ./stamp.ts ]\n' + gatewayYaml({ a: [a.url] }, '  - { name: s, match: { path: /s }, upstream: a, plugins: { stamp: {} } }'))
  const gw = await startFromFile(file)
  t.teardown(async () => { await gw.close(); await a.close() })
  const stale = () => gw.logs.filter(l => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('plugin files changed'))

  t.equal((await gw.reloader.reload('signal')).result, 'success')
  t.equal(stale().length, 0, 'no warning while the plugin file is unchanged')
  writeUserPlugin(dir, 'stamp', 500, "{ onRequest: () => ({ status: 200, body: 'v2' }) }")
  utimesSync(plugin, new Date(), new Date(Date.now() + 5_000))
  t.equal((await gw.reloader.reload('signal')).result, 'success')
  t.equal(await served(gw.url, '/s'), 'v1', 'Node caches ES modules: the old code runs')
  t.match(stale(), [{ plugins: ['./stamp.ts'] }], 'the reload warns that the plugin needs a restart')
})

t.test('concurrent triggers are serialized and coalesced', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  const results = await Promise.all(Array.from({ length: 6 }, () => gw.reloader.reload('admin')))
  t.ok(results.every(r => r.result === 'success'))
  const attempts = gw.logs.filter(l => l.msg === 'config reloaded').length
  t.equal(attempts, 2, 'one running, the other five share the one queued behind it')
  t.equal(new Set(results.slice(1)).size, 1, 'the queued callers get the same result')
})

t.test('a change to the config file while the gateway starts is applied once it watches', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const gated = (upstream: string) => 'loadPlugins: [ ./gate.ts ]\n' + gatewayYaml({ [upstream]: [upstream === 'a' ? a.url : b.url] },
    `  - { name: api, match: { path: /api }, upstream: ${upstream}, plugins: { gate: {} } }`)
  const cf = await configFile(gated('a'))
  const gate = startupGate(cf.dir)
  t.teardown(async () => { await Promise.all([a.close(), b.close(), cf.remove()]) })
  const starting = startFromFile(cf.file, { watch: true })
  t.ok(await gate.reached(), 'the start is under way (the plugin\'s setup), the file read')
  await cf.write(gated('b'))
  gate.open()
  const gw = await starting
  t.teardown(() => gw.close())
  t.equal(await waitFor(async () => await served(gw.url, '/api') === 'b' ? 'b' : undefined), 'b', 'the file as saved during the start serves')
  t.match(gw.reloader.last, { trigger: 'file', result: 'success' })
})

/** The lines logged for rejected reloads. */
const rejected = (logs: Array<Record<string, unknown>>) => logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith('config reload rejected'))
/** Past the directory watch's debounce and the poll (every second) that follows a save: all the events one save makes. */
const SAVE_EVENTS_MS = 1_500

t.test('a file rejected for a file it names is tried again once saved again (or touched), not on the other events of the same save', async t => {
  const a = await namedUpstream('a')
  const jwt = `  - { name: api, match: { path: /api }, upstream: a, plugins: { jwt-auth: { issuer: https://login.example.com, jwksFile: jwks.json } } }`
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.replace(gatewayYaml({ a: [a.url] }, jwt))
  t.equal(await waitFor(() => gw.reloader.last?.result), 'invalid', 'jwks.json is missing')
  await sleep(SAVE_EVENTS_MS)
  t.equal(rejected(gw.logs).length, 1, 'reported once for the save')

  writeFileSync(join(cf.dir, 'jwks.json'), JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: 'ec-1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] }))
  const now = new Date()
  utimesSync(cf.file, now, now)
  t.equal(await waitFor(() => gw.reloader.last?.result === 'success' ? 'success' : undefined), 'success', 'the touched file is tried again, and now loads')
  t.equal(await served(gw.url, '/api'), 'status 401', 'jwt-auth is in place')
})

t.test('a deleted config file is reported once, not once per event of the deletion', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  // A first save seen: the watch and the poll are in place.
  await cf.replace(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a') + '\n' + route('other', '/other', 'a')))
  t.equal(await waitFor(() => gw.reloader.last?.result), 'success')

  rmSync(cf.file)
  t.equal(await waitFor(() => gw.reloader.last?.result === 'invalid' ? 'invalid' : undefined), 'invalid')
  await sleep(SAVE_EVENTS_MS)
  t.equal(rejected(gw.logs).length, 1, 'one line')
  t.match(rejected(gw.logs)[0], { issues: [/cannot read file: ENOENT/] })
  t.match(await (await request(`${gw.adminUrl}/metrics`)).body.text(), /portcullis_config_reloads_total\{result="invalid"\} 1\n/, 'counted once')
  t.equal(await served(gw.url, '/api'), 'a', 'the active config serves on')
})

t.test('a plugin file that failed to import is imported again on the next reload, once fixed (.ts and .mjs)', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('api', '/api', 'a')))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const index = new URL('../../src/index.ts', import.meta.url).href
  for (const ext of ['ts', 'mjs']) {
    const name = `late-${ext}`
    const plugin = (code: string) => writeFileSync(join(cf.dir, `${name}.${ext}`), code)
    await cf.write(`loadPlugins: [ ./${name}.${ext} ]\n` + gatewayYaml({ a: [a.url] }, `  - { name: api, match: { path: /api }, upstream: a, plugins: { ${name}: {} } }`))
    plugin('export default {{\n')
    let status = await gw.reloader.reload('signal')
    t.match(status, { result: 'invalid', issues: [{ path: 'loadPlugins[0]', message: new RegExp(`^cannot load plugin "./${name}.${ext}"`) }] }, `${ext}: a syntax error`)
    plugin('throw new Error("not ready yet")\n')
    status = await gw.reloader.reload('signal')
    t.match(status, { result: 'invalid', issues: [{ message: /not ready yet/ }] }, `${ext}: the file as it is now, not the error of the first import`)
    plugin(`import { definePlugin, Type } from ${JSON.stringify(index)}
export default definePlugin({ name: ${JSON.stringify(name)}, priority: 500, schema: Type.Object({}), setup: () => ({ onRequest: () => ({ status: 200, body: ${JSON.stringify(ext)} }) }) })
`)
    status = await gw.reloader.reload('signal')
    t.equal(status.result, 'success', `${ext}: fixed, it loads`)
    t.equal(await served(gw.url, '/api'), ext)
    t.equal((await gw.reloader.reload('signal')).result, 'success', `${ext}: a loaded plugin stays loaded`)
    t.equal(await served(gw.url, '/api'), ext)
  }
})
