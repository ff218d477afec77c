import t from 'tap'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { until } from './helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// res.replaceBody(buffer): a Buffer sent at once in place of the upstream's body, whatever that
// body does (stalls, breaks, is long), with its own Content-Length; streams added before it are
// dropped, streams added after get it. The upstream's try is no concern of the client's.
const REPLACEMENT = Buffer.from('the replacement')
sharedWithPlugins('replacement', REPLACEMENT)
sharedWithPlugins('Transform', Transform)
const seen = sharedWithPlugins('replace-seen', [] as unknown[])
const gates = sharedWithPlugins('replace-gates', new Map<string, Promise<void>>())
const dir = t.testdir({})
// Runs first in the response phase (lowest priority): a stream the replacement drops.
writeUserPlugin(dir, 'inner', 10, `{
  onResponse (res, req) { if (req.path.startsWith('/streamed')) res.pipeThrough(new (shared('Transform'))({ transform (_c, _e, cb) { cb(new Error('the dropped stream ran')) } })) }
}`)
writeUserPlugin(dir, 'replacer', 100, `{
  onResponse (res, req) {
    const replace = () => {
      res.status = 200
      res.replaceBody(shared('replacement'))
      shared('replace-seen').push(res.replyBody)
      if (req.path.startsWith('/streamed')) res.pipeThrough(new (shared('Transform'))({ transform (c, _e, cb) { cb(null, c.toString().toUpperCase()) } }))
    }
    const gate = shared('replace-gates').get(req.path)
    if (gate === undefined) { replace(); return }
    return gate.then(replace)
  }
}`)

const held = new Map<string, ServerResponse>()
const up = await startUpstream((req, res) => {
  const path = req.url as string
  held.set(path, res)
  if (path.startsWith('/long')) { res.writeHead(503, { 'content-length': 4 * 1024 * 1024 }); res.end(Buffer.alloc(4 * 1024 * 1024, 'e')); return }
  if (path.startsWith('/head')) { res.writeHead(503, { 'content-length': 1000 }).end(); return }
  // A body that stalls 10 bytes into 1000; the test may then reset it.
  res.writeHead(path.startsWith('/ok') ? 200 : 503, { 'content-length': 1000 }).write('x'.repeat(10))
})
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./inner.ts, ./replacer.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, timeouts: { idle: 60s }, plugins: { inner: {}, replacer: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

const get = (path: string, method: 'GET' | 'HEAD' = 'GET') => request(`${gw.url}${path}`, { method, headersTimeout: 10_000, bodyTimeout: 10_000 })
const logged = (res: { headers: Record<string, unknown> }) => waitForLog(gw.logs, { msg: 'request', requestId: res.headers['x-request-id'] })
const closed = (path: string) => until(() => held.get(path)?.destroyed === true, 10_000)

t.test('an upstream body that stalls: the replacement at once, the try ended once it is sent', async t => {
  seen.length = 0
  for (const path of ['/stall', '/ok-stall']) {
    const res = await get(path)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-length'], String(REPLACEMENT.length))
    t.equal(await res.body.text(), 'the replacement')
    t.match(await logged(res), { status: 200, error: undefined })
    t.ok(await closed(path), `${path}: the upstream's connection closed, not held for the idle timeout`)
  }
  t.ok(seen.every(b => b === REPLACEMENT), 'replyBody is the very Buffer')
})

t.test('streams added before are dropped, those added after get the replacement', async t => {
  const res = await get('/streamed')
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'THE REPLACEMENT')
})

t.test('a long upstream body: the replacement, the upstream\'s not read whole', async t => {
  const res = await get('/long')
  t.equal(await res.body.text(), 'the replacement')
  t.ok(await closed('/long'))
  t.match(await logged(res), { status: 200, error: undefined })
})

t.test('HEAD: the replacement\'s length, no body', async t => {
  const res = await get('/head', 'HEAD')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(REPLACEMENT.length))
  t.equal(await res.body.text(), '')
})

t.test('an upstream that resets while an async onResponse holds the head, which then replaces the body: the replacement, not a 502', async t => {
  gw.logs.length = 0
  let open = (): void => {}
  gates.set('/reset-held', new Promise<void>(resolve => { open = resolve }))
  const answer = get('/reset-held')
  await until(() => held.has('/reset-held'))
  held.get('/reset-held')?.socket?.resetAndDestroy()
  t.ok(await waitForLog(gw.logs, { msg: 'upstream request failed' }, 10_000), 'the gateway saw the reset')
  open()
  const res = await answer
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'the replacement')
  t.match(await logged(res), { status: 200, error: undefined })
})
