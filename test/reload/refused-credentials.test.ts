import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { countAt, otherClients, writeCounterPlugin } from '../stores/counter-plugin.ts'
import { freePort } from '../helpers/ports.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { startFromFile } from './helpers.ts'

// A reload whose new Redis store's server answers and refuses its credentials is a config error:
// refused, the old config serving with its store; an unreachable server is an outage (the reload
// goes on, the store down); a start with refused credentials starts, saying so.

const PW = 'right-pw-1234'
const redis = await RedisProcess.start(['--requirepass', PW])
t.teardown(() => redis.stop())
const raw = new Redis(redis.port, '127.0.0.1', { password: PW })
t.teardown(() => raw.quit())

const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
t.teardown(() => up.close())

/** The config with store `shared` at `port` (the server's by default), authenticated with `password`. */
const yaml = (password: string, port = redis.port) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./hit-counter.ts ]
stores:
  shared:
    type: redis
    url: "redis://127.0.0.1:${port}"
    password: "${password}"
    commandTimeout: 2s
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: shared, match: { path: /shared }, upstream: up, plugins: { hit-counter: { store: shared, key: a } } }
`
// In the project's tree (t.testdir), where the plugin file is loaded as ESM TypeScript.
const dir = t.testdir({ 'gateway.yaml': yaml(PW) })
const file = join(dir, 'gateway.yaml')
writeCounterPlugin(dir)
const gw = await startFromFile(file, { watch: true })
t.teardown(() => gw.close())
const count = () => countAt(`${gw.url}/shared`)
const clients = () => otherClients(raw)
const sharedState = async () => (await gw.stores()).find(s => s.name === 'shared')?.state

/** POST /config/reload: the status and the answer. */
async function adminReload (): Promise<{ status: number, body: { result: string, error?: string, issues?: Array<{ path: string, line: number, message: string }> } }> {
  const res = await request(`${gw.adminUrl as string}/config/reload`, { method: 'POST' })
  return { status: res.statusCode, body: await res.body.json() as never }
}

/** Until the gateway's connections to Redis are `ids`, 5 s at most: the refused store's are closed. */
async function onlyClients (ids: string[]): Promise<string[]> {
  let now = await clients()
  for (let i = 0; i < 250 && now.join() !== ids.join(); i++) {
    await new Promise(resolve => setTimeout(resolve, 20))
    now = await clients()
  }
  return now
}

t.test('a reload to a wrong password is refused, whatever asks for it; the old store keeps counting; no connection is left', async t => {
  t.equal(await count(), '1')
  const before = await clients()
  t.equal(before.length, 1, 'one connection for the store')
  writeFileSync(file, yaml('wrong-pw-5678'))

  const { status, body } = await adminReload()
  t.equal(status, 422, 'POST /config/reload: refused as an invalid config')
  t.equal(body.result, 'invalid')
  t.equal(body.error, 'invalid_config')
  t.match(body.issues, [{ path: 'stores.shared.password', line: 10, message: /store "shared": its Redis server refused its credentials \(WRONGPASS / }])
  t.notMatch(JSON.stringify(body), /wrong-pw-5678|right-pw-1234/, 'no password in the answer')
  const rejected = gw.logs.filter(l => l.msg === 'config reload rejected, the active config keeps serving: invalid configuration (1 problem):\n' + `${file}:10:15 stores.shared.password: store "shared": its Redis server refused its credentials (WRONGPASS invalid username-password pair or user is disabled.); the active config keeps serving, with its stores`)
  t.equal(rejected.length, 1, 'logged as a rejected reload, at the password\'s line')
  t.notMatch(JSON.stringify(gw.logs), /wrong-pw-5678|right-pw-1234/, 'no password in the log')

  t.equal(await count(), '2', 'the old store counts on')
  t.equal(await raw.get('pc:hits:{a}'), '2', 'in Redis')
  t.equal(await sharedState(), 'up', 'GET /stores: the store in service, up')
  t.same(await onlyClients(before), before, 'CLIENT LIST: the refused store\'s connections are closed, the old one kept')

  t.equal((await gw.reloader.reload('signal')).result, 'invalid', 'SIGHUP\'s reload: refused too')
  // A touch of the file: the watcher tries the same text again (see Reloader.#lastBad).
  writeFileSync(file, yaml('wrong-pw-5678') + '\n')
  t.ok(await until(() => gw.reloader.last?.trigger === 'file', 10_000), 'the file watcher\'s reload...')
  t.equal(gw.reloader.last?.result, 'invalid', '...refused too')
  t.equal(await count(), '3')
  t.same(await onlyClients(before), before, 'still only the old connection')
})

t.test('a reload giving no password to a server that requires one: refused (NOAUTH), at the store', async t => {
  writeFileSync(file, yaml(PW).replace(`    password: "${PW}"\n`, ''))
  const { status, body } = await adminReload()
  t.equal(status, 422)
  t.match(body.issues, [{ path: 'stores.shared', line: 7, message: /its Redis server refused its credentials \(NOAUTH / }])
  t.equal(await count(), '4', 'the old store counts on')
})

t.test('a reload to an unreachable port goes on, as for an outage: the store down; back to the server, it counts on', async t => {
  writeFileSync(file, yaml(PW, await freePort()))
  const { status, body } = await adminReload()
  t.equal(status, 200)
  t.equal(body.result, 'success')
  t.equal(await sharedState(), 'down')
  const res = await request(`${gw.url}/shared`)
  await res.body.text()
  t.match(res.headers['x-store-error'], /.+/, 'the store\'s calls fail (the plugin fails open)')
  writeFileSync(file, yaml(PW))
  t.equal((await adminReload()).body.result, 'success')
  t.equal(await count(), '5', 'the same keys in Redis')
})

t.test('a start with a wrong password starts, its store down, and says the credentials were refused', async t => {
  const other = t.testdir({ 'gateway.yaml': yaml('wrong-pw-5678') })
  writeCounterPlugin(other)
  const started = await startFromFile(join(other, 'gateway.yaml'))
  t.teardown(() => started.close())
  const res = await request(`${started.url}/shared`)
  t.equal(await res.body.text(), 'ok', 'serving')
  t.match(res.headers['x-store-error'], /.+/)
  const said = started.logs.find(l => l.level === 50 && l.store === 'shared')
  t.match(said, { key: 'stores.shared.password', error: /^WRONGPASS /, msg: /^its Redis server refused the store's credentials: it stays down until they are corrected, or the server takes them$/ })
  t.notMatch(JSON.stringify(started.logs), /wrong-pw-5678|right-pw-1234/, 'no password in the log')
})
