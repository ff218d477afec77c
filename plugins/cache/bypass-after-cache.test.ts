import type { ServerResponse } from 'node:http'
import t from 'tap'
import { request } from 'undici'
import { rig, type Handler } from '../../test/helpers/cache-rig.ts'
import { writeUserPlugin } from '../../test/helpers/user-plugin.ts'
import { until } from '../../test/helpers/wait.ts'

// A bypass header or cookie a plugin after the cache puts in the request sent upstream (onRequest
// below priority 500, or onUpstreamTry, which may still change req.headers) comes after the lookup:
// the answer is the upstream's to that request, and is neither stored nor given to waiters.

const send = (res: ServerResponse, body: string) => {
  res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=60' }).end(body)
}
// The upstream answers for the session it got.
const handler: Handler = (req, res, n) => send(res, `for ${String(req.headers.cookie)} ${String(req.headers['x-debug'] ?? req.headers.x_debug)} ${n}`)
const CACHE = '{ bypass: { headers: [x-debug], cookies: [session] } }'
/** Sets what the client's `x-set` names (`cookie: session=alice`, `x-debug: 1`...) in the request sent upstream. */
const SETTER = "(req: any) => { const v = req.headers['x-set']; if (typeof v === 'string') { const i = v.indexOf(':'); req.headers[v.slice(0, i)] = v.slice(i + 1) } }"

for (const hook of ['onRequest', 'onUpstreamTry']) {
  t.test(`a bypass cookie or header a plugin after the cache sets in ${hook} is not stored`, async t => {
    const plugin = writeUserPlugin(t.testdir({}), 'late-session', 100, `{ ${hook}: ${SETTER} }`)
    const r = await rig(t, handler, CACHE, `loadPlugins: [ "${plugin}" ]\nplugins: { late-session: {} }`)
    const cases = [['/c', 'cookie:theme=dark; session=alice'], ['/h', 'x-debug:1'], ['/u', 'x_debug:1']]
    for (const [path, set] of cases as Array<[string, string]>) {
      const alice = await r.get(path, { 'x-set': set })
      t.same([alice.body.includes('alice') || alice.body.includes(' 1 '), alice.cacheStatus], [true, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=bypass'], set)
      const anon = await r.get(path)
      t.same([anon.body.startsWith('for undefined undefined'), anon.cacheStatus.includes('stored')], [true, true], `${set}: the next client gets its own answer`)
      t.match((await r.get(path)).cacheStatus, /^Portcullis; hit/, `${set}: which is stored`)
    }
    // The same plugin setting nothing: cached as before.
    t.match((await r.get('/c', { 'x-set': 'cookie:theme=dark' })).cacheStatus, /^Portcullis; hit/)
  })
}

t.test('a leader whose request got a bypass cookie after the cache hands its waiters nothing: they go upstream', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const r = await rig(t, (req, res, n) => {
    if (n === 1) void held.then(() => handler(req, res, n))
    else handler(req, res, n)
  }, CACHE, `loadPlugins: [ "${writeUserPlugin(t.testdir({}), 'late-session', 100, `{ onRequest: ${SETTER} }`)}" ]\nplugins: { late-session: {} }`)
  const alice = r.get('/w', { 'x-set': 'cookie:session=alice' })
  t.ok(await until(() => r.seen.length === 1), 'alice\'s request is upstream')
  const anon = request(`${r.gw.url}/w`).then(async res => ({ body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }))
  t.ok(await until(() => r.gw.inFlight === 2), 'the anonymous request waits on alice\'s fetch')
  release()
  t.equal((await alice).cacheStatus, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=bypass')
  const got = await anon
  t.same([got.body, got.cacheStatus.includes('collapsed')], ['for undefined undefined 2', false], 'not given alice\'s answer')
})

t.test('a revalidation whose request got a bypass cookie after the cache freshens nothing, and leaves the entry', async t => {
  const r = await rig(t, (req, res) => {
    if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"', 'cache-control': 'public, no-cache' }).end(); return }
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'public, no-cache', 'content-length': 6 }).end('stored')
  }, CACHE, `loadPlugins: [ "${writeUserPlugin(t.testdir({}), 'late-session', 100, `{ onRequest: ${SETTER} }`)}" ]\nplugins: { late-session: {} }`)
  t.match((await r.get('/v')).cacheStatus, /stored/)
  const alice = await r.get('/v', { 'x-set': 'cookie:session=alice' })
  t.same([alice.body, alice.cacheStatus], ['stored', 'Portcullis; fwd=stale; fwd-status=304; detail=bypass'])
  t.match((await r.get('/v')).cacheStatus, /^Portcullis; fwd=stale; fwd-status=304; stored/, 'the entry stays, revalidated for the next client')
})
