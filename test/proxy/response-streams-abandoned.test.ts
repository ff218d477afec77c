import t from 'tap'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Response body streams plugins set up are destroyed when the response phase is abandoned (a
// later hook throws, rejects or times out; the client leaves while one runs): they were left
// neither ended nor destroyed, and what they held (a compress copy's claim, an encoder) with them.
// Response hooks run by priority, lowest first: `early` (100) adds a stream, `later` (900) fails
// or holds the response, `last` (950) adds one once `later` is done. `replier` (50) answers
// requests with x-reply itself, the others' response hooks running on its reply.
const dir = t.testdir({})
const s = sharedWithPlugins('abandoned', {
  PassThrough,
  /** Request ids (x-id) with `:early` or `:last`, once their stream is closed. */
  closed: new Set<string>(),
  started: new Set<string>(),
  held: [] as Array<() => void>
})
const piping = (tag: string) => `{
  onResponse (res, req) {
    const s = shared('abandoned')
    const stream = new s.PassThrough()
    stream.once('close', () => { s.closed.add(req.clientHeaders['x-id'] + ':${tag}') })
    res.pipeThrough(stream)
  }
}`
writeUserPlugin(dir, 'early', 100, piping('early'))
writeUserPlugin(dir, 'last', 950, piping('last'))
writeUserPlugin(dir, 'later', 900, `{
  onResponse (_res, req) {
    const s = shared('abandoned')
    const how = req.clientHeaders['x-later']
    s.started.add(req.clientHeaders['x-id'])
    if (how === 'hold') return new Promise(resolve => { s.held.push(resolve) })
    if (how === 'throw') throw new Error('later failed')
    if (how === 'reject') return Promise.reject(new Error('later failed'))
    if (how === 'hang') return new Promise(() => {})
  }
}`)
writeUserPlugin(dir, 'replier', 50, `{
  onRequest: (req) => req.clientHeaders['x-reply'] === undefined ? undefined : { status: 200, body: 'the reply' }
}`)
const up = await startUpstream((req, res) => { req.resume(); res.end('the upstream\'s') })
t.teardown(() => up.close())
const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 300ms
loadPlugins: [ ./early.ts, ./later.ts, ./last.ts, ./replier.ts ]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: u, plugins: { early: {}, later: {}, last: {}, replier: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(async () => { for (const release of s.held) release(); await gw.close() })

const answers = [['upstream', {}], ['reply', { 'x-reply': '1' }]] as const

t.test('streams go through as ever when nothing fails', async t => {
  for (const [answer, headers] of answers) {
    const res = await request(`${gw.url}/ok`, { headers: { ...headers, 'x-id': `ok-${answer}` } })
    t.equal(await res.body.text(), answer === 'reply' ? 'the reply' : 'the upstream\'s', answer)
  }
})

t.test('a later hook that throws, rejects or times out: the streams set up are destroyed, the error answered', async t => {
  for (const [answer, headers] of answers) {
    for (const [how, status] of [['throw', 500], ['reject', 500], ['hang', 504]] as const) {
      const id = `${how}-${answer}`
      const res = await request(`${gw.url}/x`, { headers: { ...headers, 'x-id': id, 'x-later': how } })
      await res.body.dump()
      t.equal(res.statusCode, status, `${id}: answered ${status}`)
      t.ok(await until(() => s.closed.has(`${id}:early`)), `${id}: the stream is destroyed`)
    }
  }
})

t.test('a client that leaves while a later hook runs: the streams are destroyed then, and those added once it settles', async t => {
  const logged = gw.logs.length
  for (const [answer, headers] of answers) {
    const id = `leave-${answer}`
    const controller = new AbortController()
    const res = request(`${gw.url}/x`, { headers: { ...headers, 'x-id': id, 'x-later': 'hold' }, signal: controller.signal }).catch((err: Error) => err)
    t.ok(await until(() => s.started.has(id)), `${id}: the hook runs`)
    controller.abort()
    t.ok(await res instanceof Error, `${id}: the client left`)
    t.ok(await until(() => s.closed.has(`${id}:early`)), `${id}: the stream set up is destroyed, the hook still under way`)
    t.ok(await until(() => gw.gateway.runtime.inFlight === 0), `${id}: the exchange is over`)
    for (const release of s.held.splice(0)) release()
    t.ok(await until(() => s.closed.has(`${id}:last`)), `${id}: the one a hook after it adds is destroyed too`)
  }
  t.same(gw.logs.slice(logged).filter(l => (l.level as number) >= 50), [], 'nothing logged as an error')
})
