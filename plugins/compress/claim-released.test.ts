import t, { type Test } from 'tap'
import { join } from 'node:path'
import zlib from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { until } from '../../test/helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from '../../test/helpers/user-plugin.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// A cache hit's copy in a coding holds room in keepEncoded until its Capture ends. A hit abandoned
// in a later plugin's onResponse (the client gone meanwhile, the hook failing or timing out) left
// the Capture never ended nor destroyed: its claim lasted as long as the cached body, and took all
// the room, so that no coding was kept for that body again.
const BODY = JSON.stringify({ items: Array.from({ length: 1300 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) })
const DECODE: Record<string, (b: Buffer) => Buffer> = { br: zlib.brotliDecompressSync, gzip: zlib.gunzipSync, deflate: zlib.inflateSync }

const dir = t.testdir({})
// x-later: slow (held until the test releases it), throw, or hang (never settles).
const later = sharedWithPlugins('claim-later', { started: 0, held: [] as Array<() => void> })
writeUserPlugin(dir, 'later', 900, `{
  onResponse (_res, req) {
    const how = req.clientHeaders['x-later']
    const s = shared('claim-later')
    if (how === 'slow') { s.started++; return new Promise(resolve => { s.held.push(resolve) }) }
    if (how === 'throw') throw new Error('later failed')
    if (how === 'hang') return new Promise(() => {})
  }
}`)
const up = await startUpstream((req, res) => {
  req.resume()
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600', 'content-length': String(Buffer.byteLength(BODY)) }).end(BODY)
})
t.teardown(() => up.close())
const route = (name: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: u, plugins: { cache: {}, compress: { keepEncoded: 400KiB }, later: {} } }`
const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 300ms
admin:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./later.ts ]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
${['slow', 'throw', 'hang'].map(route).join('\n')}
`, { file: join(dir, 'gw.yaml') })
t.teardown(async () => { for (const release of later.held) release(); await gw.close() })

async function get (path: string, accept: string): Promise<{ length: string | undefined, cacheStatus: string }> {
  const res = await request(`${gw.url}${path}`, { headers: { 'accept-encoding': accept } })
  const body = Buffer.from(await res.body.arrayBuffer())
  if (res.statusCode !== 200 || res.headers['content-encoding'] !== accept) throw new Error(`${path} ${accept}: ${res.statusCode} ${String(res.headers['content-encoding'])}`)
  if ((DECODE[accept] as (b: Buffer) => Buffer)(body).toString() !== BODY) throw new Error(`${path} ${accept}: another body`)
  return { length: res.headers['content-length'] as string | undefined, cacheStatus: String(res.headers['cache-status']) }
}

/** A miss and a hit in gzip, `abandon` a br hit, then three rounds of hits in gzip, br, deflate: kept from the second on. */
async function keptAfter (t: Test, name: string, abandon: () => Promise<void>): Promise<void> {
  await get(`/${name}`, 'gzip')
  t.match((await get(`/${name}`, 'gzip')).cacheStatus, /; hit/, 'a hit: the body seen once')
  await abandon()
  const rounds: boolean[][] = []
  for (let i = 0; i < 3; i++) {
    const round: boolean[] = []
    for (const coding of ['gzip', 'br', 'deflate']) round.push((await get(`/${name}`, coding)).length !== undefined)
    rounds.push(round)
  }
  t.same(rounds, [[false, false, false], [true, true, true], [true, true, true]], 'each coding copied on its next hit, then sent from memory')
  t.ok(await metricValue(gw.adminUrl as string, `portcullis_compress_kept_bytes{route="${name}"}`) > Buffer.byteLength(BODY), 'kept bytes: the body and its copies')
}

t.test('a client that leaves while a later onResponse runs: its copy\'s claim ends with it, the hook still under way', async t => {
  const logged = gw.logs.length
  await keptAfter(t, 'slow', async () => {
    const controller = new AbortController()
    const started = later.started
    const res = request(`${gw.url}/slow`, { headers: { 'accept-encoding': 'br', 'x-later': 'slow' }, signal: controller.signal }).catch((err: Error) => err)
    t.ok(await until(() => later.started > started), 'the hook runs')
    controller.abort()
    t.ok(await res instanceof Error, 'the client left')
    t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'the exchange is over, its hook not yet')
  })
  // Settling now, the hook finds the exchange over: nothing answered, nothing failed.
  for (const release of later.held.splice(0)) release()
  t.same(gw.logs.slice(logged).filter(l => (l.level as number) >= 50), [], 'nothing logged as an error')
})

t.test('a later onResponse that throws: answered 500, the claim ended', async t => {
  await keptAfter(t, 'throw', async () => {
    const res = await request(`${gw.url}/throw`, { headers: { 'accept-encoding': 'br', 'x-later': 'throw' } })
    await res.body.dump()
    t.equal(res.statusCode, 500, 'answered 500')
  })
})

t.test('a later onResponse past server.pluginTimeout: answered 504, the claim ended though the hook never settles', async t => {
  await keptAfter(t, 'hang', async () => {
    const res = await request(`${gw.url}/hang`, { headers: { 'accept-encoding': 'br', 'x-later': 'hang' } })
    await res.body.dump()
    t.equal(res.statusCode, 504, 'answered 504')
  })
})
