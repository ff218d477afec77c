import { connect } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { eventually } from '../../test/stores/store-cases.ts'
import { until } from '../../test/helpers/wait.ts'

// A path with many stored queries (any client can make them: GET /flood?_=1, ?_=2...) made an unsafe
// request's answer wait for its whole invalidation: past server.pluginTimeout it got 504, though the
// upstream had carried out the write (and a client may send it again). The answer now waits a
// moment at most; what is being fetched for the path is still kept out of the store before it goes.
const { redis, raw } = await redisWithClient(t)

let n = 0
let posts = 0
const held: Array<() => void> = []
const up = await startUpstream((req, res) => {
  req.resume()
  const body = `${req.url as string} #${++n}`
  const answer = req.method !== 'GET'
    ? () => { posts++; res.writeHead(200, { 'content-length': 2 }).end('{}') }
    : () => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) }).end(body)
  if (req.headers['x-hold'] !== undefined) held.push(answer); else answer()
})
t.teardown(() => up.close())
t.teardown(() => { for (const answer of held.splice(0)) answer() })

const PREFIX = 'bounded:'
// pluginTimeout 2 s, commandTimeout 500 ms (collapseTimeout then 249 ms: three reads fit in the hook).
const gw = await startGateway(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n  pluginTimeout: 2s\n${sharedStoreConfig(redis.url, up.url, PREFIX).replace('commandTimeout: 2s', 'commandTimeout: 500ms')}`)
t.teardown(() => gw.close())
t.ok(await storeUp(gw.adminUrl as string))

const send = async (path: string, method = 'GET', headers: Record<string, string> = {}) => {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { host: 'api.example.com', ...headers } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}
const TAG_SET = `${PREFIX}tag:{u:api.example.com/flood}`

/** `n` more members in /flood's tag set, as that many stored queries leave it. */
async function flood (n: number): Promise<void> {
  for (let i = 0; i < n; i += 5_000) await raw.sadd(TAG_SET, ...Array.from({ length: 5_000 }, (_, j) => `${PREFIX}c:r:/flood?_=${i + j}#api.example.com|http|`))
}

t.test('POST to a path with 80,000 stored queries: answered at once, its invalidation done after', async t => {
  t.match((await send('/flood')).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  t.equal(await eventually(async () => (await send('/flood')).cacheStatus.startsWith('Portcullis; hit'), true, 5_000), true, 'stored')
  await flood(80_000)
  // A fetch of the path under way when the POST comes: kept out of the store, as before.
  const inFlight = send('/flood?q', 'GET', { 'x-hold': '1' })
  t.ok(await until(() => held.length === 1), 'the GET is upstream')

  const began = performance.now()
  const posted = await send('/flood', 'POST')
  const took = performance.now() - began
  t.equal(posted.status, 200, 'not 504: the hook no longer waits for the whole invalidation')
  t.equal(posts, 1, 'the upstream carried out the POST')
  t.ok(took < 1_000, `answered in ${Math.round(took)} ms`)
  t.equal(await raw.exists(`${TAG_SET}:purge`), 1, 'the invalidation was still under way when it was answered')

  held.shift()?.()
  t.match((await inFlight).cacheStatus, /detail=purged$/, 'the fetch begun before it is not stored')
  t.equal(await eventually(() => raw.exists(`${TAG_SET}:purge`), 0, 120_000), 0, 'the invalidation went on to the end')
  t.match((await send('/flood')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'the entry stored before the POST is gone')
  t.match((await send('/flood?q')).cacheStatus, /^Portcullis; fwd=uri-miss/)
})

t.test('writes at once while an invalidation runs: one more deletion of the URL, not one each', async t => {
  await flood(5_000)
  const takes = await scriptTakes()
  t.teardown(() => takes.close())
  // Six answered at once, while writes wait (under the store's 500 ms commandTimeout): the first
  // one's deletion is held back while the others come.
  const answered = Promise.all(Array.from({ length: 6 }, async () => (await send('/flood', 'PUT', { 'x-hold': '1' })).status))
  t.ok(await until(() => held.length === 6), 'the six are upstream')
  await raw.call('CLIENT', 'PAUSE', '400', 'WRITE')
  for (const answer of held.splice(0)) answer()
  t.same(await answered, [200, 200, 200, 200, 200, 200])
  t.equal(await eventually(() => raw.exists(TAG_SET, `${TAG_SET}:purge`), 0, 60_000), 0, 'all deleted')
  // The one queued runs once the first is over (each begins at once otherwise: all seen by then).
  t.ok(await until(() => takes.count() >= 2), 'a deletion for the writes during the first')
  await raw.echo('done')
  t.ok(await until(() => takes.echoed()), 'the monitor has seen every command')
  t.equal(takes.count(), 2, 'the tag set taken twice: the running deletion, then one for the writes during it')
})

/** The TAKE_TAG scripts run for /flood, counted by the PTTL of its purge set each begins with (MONITOR). */
async function scriptTakes (): Promise<{ count (): number, echoed (): boolean, close (): void }> {
  const pttl = `[0 lua] "PTTL" "${TAG_SET}:purge"`
  let takes = 0
  let echoed = false
  let rest = ''
  const socket = connect(redis.port, '127.0.0.1')
  await new Promise<void>(resolve => {
    socket.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('latin1')).split('\r\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        if (line === '+OK') resolve()
        else if (line.endsWith(pttl)) takes++
        else if (line.endsWith('"echo" "done"')) echoed = true
      }
    })
    socket.write('MONITOR\r\n')
  })
  return { count: () => takes, echoed: () => echoed, close: () => socket.destroy() }
}
