import t from 'tap'
import { rig } from '../../test/helpers/cache-rig.ts'
import { waitForLog } from '../../test/helpers/logs.ts'

t.test('a stale entry served in place of a 5xx whose body breaks stays stored', async t => {
  const r = await rig(t, (_req, res, n) => {
    if (n === 1) {
      // Stale at once, usable for 10 minutes in place of an error.
      res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=600', 'content-length': 6 }).end('stored')
    } else if (n === 2) {
      // The error page is cut: the upstream's connection ends 10 bytes into 1000.
      res.writeHead(500, { 'content-length': 1000 })
      res.write('x'.repeat(10), () => res.socket?.destroy())
    } else {
      res.writeHead(500, { 'content-length': 5 }).end('error')
    }
  })
  t.match((await r.get('/page')).cacheStatus, /stored/)
  // Its client gets the gateway's 502 (the stored body would go after the error's, which never ends).
  await r.get('/page')
  t.ok(await waitForLog(r.gw.logs, { msg: 'request', path: '/page', status: 502 }))
  const next = await r.get('/page')
  t.same([next.status, next.body], [200, 'stored'], 'the next error is answered with the stored response again')
  t.match(next.cacheStatus, /fwd-status=500; .*detail=stale-if-error/)
  t.equal(r.seen.length, 3)
})
