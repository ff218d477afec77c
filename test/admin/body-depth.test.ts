import t from 'tap'
import { request } from 'undici'
import { MAX_JSON_DEPTH } from '../../src/server/admin/bodies.ts'
import { startCluster } from '../workers/helpers.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

const ROUTE = '  - { name: cached, match: { path: "/*" }, upstream: a, plugins: { cache: {} } }'

/** A JSON object nested `depth` levels deep: {"a":{"a":...1}}. */
const nested = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)

async function post (admin: string, path: string, body: string): Promise<{ status: number, body: unknown }> {
  const res = await request(`${admin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  return { status: res.statusCode, body: await res.body.json() }
}

const TOO_DEEP = { status: 400, body: { error: 'bad_request', message: `the JSON body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep, refused` } }

t.test('an admin body nested past the limit is 400 bad_request, before any endpoint runs', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, ROUTE))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const admin = gw.adminUrl as string

  t.same(await post(admin, '/plugins/cache/purge', nested(5_000)), TOO_DEEP, 'a plugin endpoint')
  t.same(await post(admin, '/config/reload', `[${nested(MAX_JSON_DEPTH)}]`), TOO_DEEP, 'one level past it, in an array')
  t.match(await post(admin, '/plugins/cache/purge', nested(MAX_JSON_DEPTH)), { status: 400, body: { error: 'bad_purge' } }, 'at the limit, the endpoint judges it')
})

t.test('workers: an admin body nested past the limit is refused as in one process, not sent to the workers (it could not be: 504 workers_missing)', async t => {
  const a = await namedUpstream('a')
  t.teardown(() => a.close())
  const { admin, cli } = await startCluster(t, `  a: { targets: [ { url: "${a.url}" } ] }`, ROUTE)
  t.same(await post(admin, '/plugins/cache/purge', nested(5_000)), TOO_DEEP)
  t.match(await post(admin, '/plugins/cache/purge', '{"all":true}'), { status: 200, body: { workers: [{ status: 200 }, { status: 200 }] } }, 'the workers still answer')
  t.notOk(cli.lines.some(l => l.level !== undefined && Number(l.level) >= 50), 'nothing logged as an error')
})
