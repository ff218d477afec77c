import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { namedUpstream } from '../reload/helpers.ts'

// ctx.configsOf handed out the config's own objects (only its lists were frozen), and setup its own
// config, one object for every route of a top-level plugin: a plugin's setup rewrote another
// route's ip-filter deny list (the addresses it was to refuse let in), or changed what the next
// route's setup read.
const INDEX = new URL('../../src/index.ts', import.meta.url).href
const dir = t.testdir({})
const meddler = join(dir, 'meddler.ts')
writeFileSync(meddler, `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'meddler',
  priority: 100,
  schema: Type.Object({ tag: Type.String() }),
  setup (config, ctx) {
    const seen = config.tag
    const tried: Record<string, string> = {}
    const attempt = (what: string, change: () => void) => {
      try { change(); tried[what] = 'changed' } catch (err) { tried[what] = (err as Error).constructor.name }
    }
    attempt('deny', () => { (ctx.configsOf('ip-filter')[0] as { deny: string[] }).deny.splice(0, 1, '192.0.2.0/24') })
    attempt('tag', () => { (config as { tag: string }).tag = 'changed by ' + ctx.routeName })
    return { onRequest: () => ({ status: 200, body: { seen, tried, same: ctx.configsOf('meddler')[0] === config } }) }
  }
})
`)

t.test('a plugin cannot change the config ctx.configsOf or setup hands it: another route is not affected', async t => {
  const up = await namedUpstream('up')
  t.teardown(() => up.close())
  const gw = await startGateway(`loadPlugins: [${JSON.stringify(meddler)}]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
plugins:
  meddler: { tag: original }
routes:
  - { name: one, match: { path: /one }, upstream: up }
  - { name: two, match: { path: /two }, upstream: up }
  - { name: guarded, match: { path: /guarded }, upstream: up, plugins: { meddler: false, ip-filter: { deny: [127.0.0.0/8] } } }
`)
  t.teardown(() => gw.close())
  const answer = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    return { status: res.statusCode, body: String(res.headers['content-type']).includes('json') ? await res.body.json() : await res.body.text() }
  }
  const frozen = { deny: 'TypeError', tag: 'TypeError' }
  t.same(await answer('/one'), { status: 200, body: { seen: 'original', tried: frozen, same: true } }, 'changing either throws (strict mode)')
  t.same(await answer('/two'), { status: 200, body: { seen: 'original', tried: frozen, same: true } }, 'the next route\'s setup reads the config as written')
  t.match(await answer('/guarded'), { status: 403, body: { error: 'ip_denied' } }, 'the other route\'s ip-filter still denies')
})
