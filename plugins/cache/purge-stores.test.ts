import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { callUntil } from '../../test/helpers/wait.ts'
import { entryStored, numberingUpstream } from '../../test/helpers/shared-cache-store.ts'

t.test('a purge over several stores, one of them down: the others are purged, the answer names the one that failed', async t => {
  const [working, down, up] = await Promise.all([RedisProcess.start(), RedisProcess.start(), numberingUpstream()])
  t.teardown(() => Promise.all([working.stop(), down.stop(), up.close()]))
  const gw = await startGateway(`
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  working: { type: redis, url: "${working.url}", keyPrefix: "w:", commandTimeout: 2s }
  down: { type: redis, url: "${down.url}", keyPrefix: "d:", commandTimeout: 2s }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a/* }, upstream: up, plugins: { cache: { store: working } } }
  - { name: b, match: { path: /b/* }, upstream: up, plugins: { cache: { store: down } } }
`)
  t.teardown(() => gw.close())
  let ready = false
  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    return { status: String(res.headers['cache-status']), body: await res.body.text() }
  }
  const states = async () => ((await (await request(`${gw.adminUrl as string}/stores`)).body.json()) as { stores: Array<{ name: string, state: string }> }).stores
  t.ok(await callUntil(async () => { const up = await states(); ready = ['working', 'down'].every(name => up.find(s => s.name === name)?.state === 'up') }, () => ready, 10_000), 'both Redis stores are up')
  await get('/a/1')
  await get('/b/1')
  await Promise.all([entryStored(working, 'w:'), entryStored(down, 'd:')])
  t.match((await get('/a/1')).status, /^Portcullis; hit/, 'cached on the working store')
  await down.kill()

  const purge = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })
  const body = await purge.body.json() as { error: string, message: string, purged: number, unavailable: string[] }
  t.equal(purge.statusCode, 503)
  t.equal(body.error, 'store_unavailable')
  t.same(body.unavailable, ['down'], 'the store that failed, named')
  t.match(body.message, /^store "down": \S.*; [1-9]\d* key\(s\) purged on the stores that answered; the purge is incomplete: send it again once the store is back, it goes on with what is left$/)
  t.ok(body.purged >= 1, `what the working store dropped is counted: ${body.purged}`)
  t.notMatch((await get('/a/1')).status, /^Portcullis; hit/, 'a miss on the working store after the purge')
})
