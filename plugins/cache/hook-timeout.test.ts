import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startFromFile, namedUpstream } from '../../test/reload/helpers.ts'

// A collapsed request waits within its onRequest, up to twice collapseTimeout (its leader's fetch,
// then, that leader gone, the next one's); server.pluginTimeout bounds every async hook. A config
// where the first may reach the second answered waiters 504 where the cache meant them to go
// upstream (pluginTimeout 1s, collapseTimeout 5s: 3 of 4 concurrent misses): refused at setup.
const up = await namedUpstream('a')
t.teardown(() => up.close())
const dir = t.testdir({})
const file = join(dir, 'gateway.yaml')
const writeConfig = (collapseTimeout: string) => writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 1s
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: a, plugins: { cache: { collapseTimeout: ${collapseTimeout} } } }
`)
const REFUSED = 'route "r", plugin cache: collapseTimeout (500 ms) must be less than half of server.pluginTimeout (1000 ms)'

t.test('collapseTimeout of half of server.pluginTimeout or more: no start, the reason naming both', async t => {
  for (const collapse of ['500ms', '5s']) {
    writeConfig(collapse)
    await t.rejects(startFromFile(file), { code: 'PCL_ERR_PLUGIN_SETUP', plugin: 'cache', route: 'r', message: new RegExp(`collapseTimeout \\(${collapse === '5s' ? 5000 : 500} ms\\).*server\\.pluginTimeout \\(1000 ms\\)`) })
  }
})

t.test('on reload: refused, the active config serving on', async t => {
  writeConfig('499ms')
  const gw = await startFromFile(file)
  t.teardown(() => gw.close())
  writeConfig('500ms')
  const res = await request(`${gw.adminUrl as string}/config/reload`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
  t.match(await res.body.json(), { result: 'failed', error: 'reload_failed', message: REFUSED })
  const served = await request(`${gw.url}/x`)
  await served.body.dump()
  t.equal(served.statusCode, 200, 'the active config serves')
})

t.test('left out, collapseTimeout fits a short server.pluginTimeout: the gateway starts', async t => {
  writeFileSync(file, readFileSync(file, 'utf8').replace(/, plugins: \{ cache: \{[^}]*\} \}/, ', plugins: { cache: {} }'))
  const gw = await startFromFile(file)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  t.equal(res.statusCode, 200, 'started and serving (the default 5 s would have been refused under 1 s)')
})
