import t from 'tap'
import { request } from 'undici'
import { rig } from '../../test/helpers/cache-rig.ts'
import { until } from '../../test/helpers/wait.ts'

// A collapse leader whose client leaves while the body streams has no answer for its waiters: one
// of them fetches in its place, and the others wait for that one (not each upstream).
const PIECE = Buffer.alloc(100, 'x')
const PIECES = 10
const FOLLOWERS = 20

t.test('a leader whose client leaves mid-body hands the fetch to one waiter, the others wait for it', async t => {
  let go!: () => void
  const rest = new Promise<void>(resolve => { go = resolve })
  t.teardown(go)
  const r = await rig(t, (_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': PIECE.length * PIECES })
    // The first answer sends one piece, then the rest once the test says (its client is gone by then).
    const first = n === 1 ? rest : Promise.resolve()
    res.write(PIECE)
    void first.then(async () => {
      for (let i = 1; i < PIECES && !res.destroyed; i++) {
        await new Promise(resolve => setTimeout(resolve, 20))
        res.write(PIECE)
      }
      res.end()
    })
  }, '{ collapseTimeout: 14s }')
  const leaving = new AbortController()
  const leader = await request(`${r.gw.url}/k`, { signal: leaving.signal })
  const firstChunk = await new Promise<Buffer>(resolve => leader.body.once('data', resolve))
  t.equal(firstChunk.length, PIECE.length, 'the leader has its first piece')
  const followers = Array.from({ length: FOLLOWERS }, () => r.get('/k'))
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === FOLLOWERS + 1), 'the followers wait on the leader\'s fetch')
  leaving.abort()
  leader.body.on('error', () => {})
  const answers = await Promise.all(followers)
  go()
  t.equal(r.seen.length, 2, 'one follower went upstream for all')
  t.same(answers.map(a => [a.status, a.body.length]), Array(FOLLOWERS).fill([200, PIECE.length * PIECES]))
  t.equal(answers.filter(a => /fwd=uri-miss; fwd-status=200; stored/.test(a.cacheStatus)).length, 1)
  t.equal(answers.filter(a => /collapsed/.test(a.cacheStatus)).length, FOLLOWERS - 1, 'the others collapsed onto it')
})
