import t from 'tap'
import { readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { createTestCa } from '../helpers/certs.ts'
import { mint, signingKey, type SigningKey } from '../helpers/identity-provider.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
import { loadConfig } from '../../src/config/load.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

/** Past the directory watch's debounce and the poll (every second) that follows a save: all the events one save makes. */
const SAVE_EVENTS_MS = 1_500

const touch = (file: string) => { const now = new Date(); utimesSync(file, now, now) }
const jwks = (...keys: SigningKey[]) => JSON.stringify({ keys: keys.map(k => k.jwk) })

/** A route behind jwt-auth with jwks.json, and an upstream `billing` whose connections trust ca.pem. */
const yaml = (a: string) => gatewayYaml({ a: [a] }, '  - { name: api, match: { path: /api }, upstream: a, plugins: { jwt-auth: { jwksFile: jwks.json } } }')
  .replace('upstreams:\n', 'upstreams:\n  billing: { targets: [ { url: "https://127.0.0.1:1" } ], tls: { ca: ca.pem } }\n')

async function status (url: string, token: string): Promise<number> {
  const res = await request(url + '/api', { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

t.test('touching the config file reloads it once a file it names changed, and only then', async t => {
  const [a, old, fresh] = await Promise.all([namedUpstream('a'), signingKey('ES256'), signingKey('ES256')])
  const cf = await configFile(yaml(a.url))
  writeFileSync(join(cf.dir, 'jwks.json'), jwks(old, fresh))
  writeFileSync(join(cf.dir, 'ca.pem'), createTestCa('billing', t.teardown).cert)
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const [oldToken, freshToken] = await Promise.all([mint(old, { sub: 'x' }), mint(fresh, { sub: 'x' })])
  t.equal(await status(gw.url, oldToken), 200, 'both keys verify')

  touch(cf.file)
  await sleep(SAVE_EVENTS_MS)
  t.equal(gw.reloader.last, undefined, 'a touch with nothing changed does nothing')
  t.notOk(gw.logs.some(l => l.msg === 'config reloaded'))

  // The compromised key is removed from the key set, then the config file touched.
  writeFileSync(join(cf.dir, 'jwks.json'), jwks(fresh))
  touch(cf.file)
  t.equal(await waitFor(() => gw.reloader.last?.result), 'success', 'the touch reloads')
  t.equal(await status(gw.url, oldToken), 401, 'the removed key no longer verifies')
  t.equal(await status(gw.url, freshToken), 200)

  touch(cf.file)
  await sleep(SAVE_EVENTS_MS)
  t.equal(gw.logs.filter(l => l.msg === 'config reloaded').length, 1, 'touched again with nothing changed since: nothing')

  writeFileSync(join(cf.dir, 'ca.pem'), 'garbage\n')
  touch(cf.file)
  t.equal(await waitFor(() => gw.reloader.last?.result === 'invalid' ? 'invalid' : undefined), 'invalid', 'a broken CA file is rejected')
  t.match(gw.reloader.last?.issues, [{ path: 'upstreams.billing.tls.ca', message: /not a PEM CA file/ }])
  t.equal(await status(gw.url, oldToken), 401, 'the config in service keeps serving')
  t.equal(await status(gw.url, freshToken), 200)
})

t.test('a config is dated from when its load began, before it read the files it names: one changed during the load is seen', async t => {
  const cf = await configFile('loadPlugins: [ ./slow-import.ts ]\n' + yaml('http://127.0.0.1:1'))
  writeFileSync(join(cf.dir, 'jwks.json'), jwks(await signingKey('ES256')))
  writeFileSync(join(cf.dir, 'ca.pem'), createTestCa('billing', t.teardown).cert)
  t.teardown(() => cf.remove())
  // A file the config names, read during the load (a plugin module, imported then), which notes the time
  // and keeps the load going a while: dated at its end, the config would be dated after that time.
  // (Comparing how long the load ran before and after its date measured the machine's scheduling too.)
  const seen = sharedWithPlugins('slowImport', { at: Infinity })
  const plugin = writeUserPlugin(cf.dir, 'slow-import', 500, '{}')
  writeFileSync(plugin, readFileSync(plugin, 'utf8') + "shared('slowImport').at = Date.now()\nawait new Promise(resolve => setTimeout(resolve, 20))\n")
  const loaded = await loadConfig(cf.file)
  t.ok(seen.at < Infinity, 'the plugin module was imported by the load')
  t.ok(loaded.loadedAt.getTime() <= seen.at, `loadedAt is the start of the load, not its end (${loaded.loadedAt.getTime() - seen.at} ms from the file's read)`)
})
