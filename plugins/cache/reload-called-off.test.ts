import t, { type Test } from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { numberingUpstream } from '../../test/helpers/shared-cache-store.ts'
import { writeUserPlugin } from '../../test/helpers/user-plugin.ts'

// A reload whose build fails after the cache's setup (a later route's plugin throws) is released
// unused: the cache is left as it was, and the next reload compares its routes with the config in service.

const DROPPED = /^cache entries from an earlier config/

/** A gateway whose route r caches with `cache`; `apply`: a reload, with a route using the plugin that throws after r when `withBoom`. */
async function setup (t: Test, cache: string) {
  const dir = t.testdir({})
  const boom = writeUserPlugin(dir, 'boom', 10, '(() => { throw new Error(\'boom\') })()')
  const up = await numberingUpstream()
  t.teardown(() => up.close())
  const yaml = (cache: string, withBoom: boolean) => `loadPlugins: [ ${JSON.stringify(boom)} ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r/* }, upstream: up, plugins: { cache: ${cache} } }
${withBoom ? '  - { name: boom, match: { path: /boom }, upstream: up, plugins: { boom: {} } }' : ''}
`
  const gw = await startGateway(yaml(cache, false))
  t.teardown(() => gw.close())
  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    return `${await res.body.text()} ${String(res.headers['cache-status']).replace(/; ttl=\d+$/, '')}`
  }
  const apply = async (cache: string, withBoom = false) => gw.apply(await parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${yaml(cache, withBoom)}`, join(dir, 'test.yaml')))
  return { gw, get, apply }
}

t.test('a reload failing after the cache\'s setup: the next one, the route unchanged, keeps its entries', async t => {
  const { gw, get, apply } = await setup(t, '{}')
  t.equal(await get('/r/1'), '/r/1 #1 Portcullis; fwd=uri-miss; fwd-status=200; stored')
  t.equal(await get('/r/1'), '/r/1 #1 Portcullis; hit', 'cached')
  await t.rejects(apply('{}', true), /boom/, 'the build fails on the route after the cache\'s')
  t.equal(await get('/r/1'), '/r/1 #1 Portcullis; hit', 'still cached')
  t.ok(await apply('{}'), 'reloaded')
  t.equal(await get('/r/1'), '/r/1 #1 Portcullis; hit', 'still cached: the config in service did cache the route so')
  t.same(gw.logs.filter(l => DROPPED.test(String(l.msg))), [], 'nothing dropped')
})

t.test('a reload changing the route\'s key settings that fails after the cache\'s setup drops nothing; one that succeeds does', async t => {
  const { gw, get, apply } = await setup(t, '{ key: { query: { ignore: [utm] } } }')
  t.equal(await get('/r/1?utm=a'), '/r/1?utm=a #1 Portcullis; fwd=uri-miss; fwd-status=200; stored')
  t.equal(await get('/r/1'), '/r/1?utm=a #1 Portcullis; hit', 'cached, utm ignored')
  await t.rejects(apply('{}', true), /boom/)
  t.equal(await get('/r/1'), '/r/1?utm=a #1 Portcullis; hit', 'still cached')
  t.same(gw.logs.filter(l => DROPPED.test(String(l.msg))), [], 'nothing dropped')
  t.ok(await apply('{}'), 'reloaded')
  t.equal(await get('/r/1'), '/r/1 #2 Portcullis; fwd=uri-miss; fwd-status=200; stored', 'a miss under the new settings')
  t.match(gw.logs.filter(l => DROPPED.test(String(l.msg))), [{ msg: 'cache entries from an earlier config dropped: they were stored under other key settings', dropped: 1 }], 'dropped once in service')
})
