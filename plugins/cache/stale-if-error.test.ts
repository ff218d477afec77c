import t from 'tap'
import type { ServerResponse } from 'node:http'
import { rig } from '../../test/helpers/cache-rig.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { until } from '../../test/helpers/wait.ts'

// A stored response served in place of an upstream's 5xx goes out at once (res.replaceBody): it
// once waited for the error's body to end, so a stalled one held the client until the idle
// timeout (then a 504), and a reset one got the client a 502.
const stale = (res: ServerResponse): void => {
  // Stale at once, usable for 10 minutes in place of an error.
  res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=600', 'content-length': 6 }).end('stored')
}

t.test('a 5xx whose body breaks: the stale entry is served at once, and stays stored', async t => {
  const r = await rig(t, (_req, res, n) => {
    if (n === 1) stale(res)
    // The error page is cut: the upstream's connection ends 10 bytes into 1000.
    else if (n === 2) res.writeHead(500, { 'content-length': 1000 }).write('x'.repeat(10), () => res.socket?.destroy())
    else res.writeHead(500, { 'content-length': 5 }).end('error')
  })
  t.match((await r.get('/page')).cacheStatus, /stored/)
  const served = await r.get('/page')
  t.same([served.status, served.body], [200, 'stored'])
  t.match(served.cacheStatus, /fwd-status=500; .*detail=stale-if-error/)
  t.match(await waitForLog(r.gw.logs, { msg: 'request', path: '/page', requestId: served.headers['x-request-id'] }), { status: 200, error: undefined })
  const next = await r.get('/page')
  t.same([next.status, next.body], [200, 'stored'], 'the next error is answered with the stored response again')
  t.match(next.cacheStatus, /fwd-status=500; .*detail=stale-if-error/)
  t.equal(r.seen.length, 3)
})

t.test('a 5xx whose body stalls: the stale entry is served at once, the upstream\'s try then ended', async t => {
  let stalled: ServerResponse | undefined
  const r = await rig(t, (_req, res, n) => {
    if (n === 1) { stale(res); return }
    res.writeHead(503, { 'content-length': 1000 }).write('x'.repeat(10))
    stalled = res
  }, '{}', '    timeouts: { idle: 60s }')
  t.match((await r.get('/page')).cacheStatus, /stored/)
  const served = await r.get('/page')
  t.same([served.status, served.body], [200, 'stored'])
  t.match(served.cacheStatus, /fwd-status=503; .*detail=stale-if-error/)
  t.ok(await until(() => stalled?.destroyed === true, 10_000), 'the error\'s connection is closed, not held for the idle timeout')
})

t.test('a 304 to a revalidation: the stored body, at once', async t => {
  const r = await rig(t, (req, res, n) => {
    if (n === 1) res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"v1"', 'content-length': 6 }).end('stored')
    else res.writeHead(req.headers['if-none-match'] === '"v1"' ? 304 : 500, { 'cache-control': 'max-age=60', etag: '"v1"' }).end()
  })
  await r.get('/page')
  const revalidated = await r.get('/page')
  t.same([revalidated.status, revalidated.body, revalidated.headers['content-length']], [200, 'stored', '6'])
  t.match(revalidated.cacheStatus, /fwd-status=304/)
  const head = await r.get('/page', {}, 'HEAD')
  t.same([head.status, head.body], [200, ''])
})

// A leader whose revalidation gets an error and serves the stale entry in its place: the requests
// waiting on it would most likely get the same error, so they get the entry too, each if its own
// request allows it, rather than each going to the failing upstream.
t.test('requests waiting on a revalidation that fails get the stale entry, not an upstream request each', async t => {
  let fail!: () => void
  const failing = new Promise<void>(resolve => { fail = resolve })
  const r = await rig(t, (_req, res, n) => {
    if (n === 1) stale(res)
    else void failing.then(() => res.writeHead(503, { 'content-length': 5 }).end('error'))
  })
  t.match((await r.get('/page')).cacheStatus, /stored/)
  const all = Array.from({ length: 10 }, () => r.get('/page'))
  t.ok(await until(() => r.seen.length === 2 && r.gw.gateway.runtime.inFlight === 10, 10_000), 'one revalidation, nine requests waiting on it')
  fail()
  const answers = await Promise.all(all)
  t.same(answers.map(a => [a.status, a.body]), Array(10).fill([200, 'stored']))
  t.equal(r.seen.length, 2, 'one upstream request for the ten')
  const statuses = answers.map(a => a.cacheStatus.replace(/ttl=-\d+/, 'ttl=-n'))
  t.equal(statuses.filter(s => s === 'Portcullis; fwd=stale; fwd-status=503; ttl=-n; detail=stale-if-error').length, 1, 'the leader')
  t.equal(statuses.filter(s => s === 'Portcullis; fwd=stale; fwd-status=503; collapsed; ttl=-n; detail=stale-if-error').length, 9, 'the waiters')
})

t.test('a waiter gets the stale entry only if its own request allows it (requestCacheControl: honor)', async t => {
  let fail!: () => void
  const failing = new Promise<void>(resolve => { fail = resolve })
  const r = await rig(t, (_req, res, n) => {
    // No stale-if-error of its own: only a request's allows serving it stale. Kept for its ETag.
    if (n === 1) res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"s"', 'content-length': 6 }).end('stored')
    else if (n === 2) void failing.then(() => res.writeHead(503, { 'content-length': 5 }).end('error'))
    else res.writeHead(503, { 'content-length': 5 }).end('error')
  }, '{ requestCacheControl: honor }')
  t.match((await r.get('/page')).cacheStatus, /stored/)
  const allows = { 'cache-control': 'stale-if-error=600' }
  const leader = r.get('/page', allows)
  t.ok(await until(() => r.seen.length === 2), 'the leader revalidates')
  const [plain, allowing] = [r.get('/page'), r.get('/page', allows)]
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 3), 'two requests wait on it')
  fail()
  t.same([(await leader).status, (await leader).body], [200, 'stored'])
  const [p, a] = [await plain, await allowing]
  t.same([a.status, a.body], [200, 'stored'], 'its request accepts it stale in place of an error')
  t.match(a.cacheStatus, /^Portcullis; fwd=stale; fwd-status=503; collapsed; ttl=-\d+; detail=stale-if-error$/)
  t.same([p.status, p.body], [503, 'error'], 'its request does not: it went upstream itself')
  t.equal(r.seen.length, 3)
})
