import type { Test } from 'tap'
import t from 'tap'
import { request } from 'undici'
import { rig, type Rig } from '../../test/helpers/cache-rig.ts'
import { until } from '../../test/helpers/wait.ts'

// A collapse leader whose upstream breaks the body releases its waiters, which go upstream
// together: handed on, the fetch would break for each new leader in turn, one after the other.
// And a fetch is handed on once: a leader that was handed it and also ends with no answer
// releases the rest. The upstream holds each answer's body (head and first piece sent) until the
// test breaks it, so requests that went upstream together are all seen there at once.
const PIECE = Buffer.alloc(100, 'x')
const WAITERS = 9

interface Breaking {
  r: Rig
  breaks: Map<number, () => void>
  get: (client: string, signal?: AbortSignal) => Promise<number | string>
  /** Breaks every answer begun, and those to come at once (a failing check does not leave requests hanging). */
  breakAll: () => void
}

async function breaking (t: Test): Promise<Breaking> {
  const breaks = new Map<number, () => void>()
  let all = false
  const breakAll = () => { all = true; for (const b of breaks.values()) b() }
  t.teardown(breakAll)
  const r = await rig(t, (_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': PIECE.length * 10 })
    res.write(PIECE)
    breaks.set(n, () => res.destroy())
    if (all) res.destroy()
  }, '{ collapseTimeout: 14s }')
  // The status, or how it ended: errors are fine, the wait is what counts. `client` tells the upstream whose request it is.
  const get = async (client: string, signal?: AbortSignal) => {
    try {
      const res = await request(`${r.gw.url}/k`, { headers: { 'x-client': client }, signal })
      return await res.body.text().then(() => res.statusCode, () => 'cut')
    } catch { return 'failed' }
  }
  return { r, breaks, get, breakAll }
}

/** A leader whose answer began (the upstream has it, its client has the head), and `WAITERS` requests waiting on it. */
async function leaderAndWaiters (t: Test, b: Breaking, leaving?: AbortController): Promise<Array<Promise<number | string>>> {
  const leader = b.get('leader', leaving?.signal)
  t.ok(await until(() => b.breaks.has(1)), 'the upstream began the leader\'s answer')
  const waiters = Array.from({ length: WAITERS }, (_, i) => b.get(`waiter ${i}`))
  t.ok(await until(() => b.r.gw.gateway.runtime.inFlight === WAITERS + 1), 'the others wait on the leader\'s fetch')
  t.equal(b.r.seen.length, 1)
  return [leader, ...waiters]
}

t.test('an upstream that breaks every body mid-way: the waiters go upstream together, not one after the other', async t => {
  const b = await breaking(t)
  const answers = await leaderAndWaiters(t, b)
  b.breaks.get(1)?.()
  // Chained, the second request would be the only one upstream until its body broke too.
  t.ok(await until(() => b.r.seen.length === WAITERS + 1, 10_000), 'every waiter went upstream while the others were still there')
  b.breakAll()
  t.equal((await Promise.all(answers)).length, WAITERS + 1, 'all answered')
  t.equal(b.r.seen.length, WAITERS + 1)
})

t.test('a leader whose client leaves hands the fetch on; the next one\'s upstream breaks the body: the rest go upstream together', async t => {
  const b = await breaking(t)
  const leaving = new AbortController()
  const answers = await leaderAndWaiters(t, b, leaving)
  leaving.abort()
  t.ok(await until(() => b.breaks.has(2)), 'one waiter went upstream in the leader\'s place')
  t.equal(b.r.seen.length, 2)
  b.breaks.get(2)?.()
  t.ok(await until(() => b.r.seen.length === WAITERS + 1, 10_000), 'the rest went upstream while the others were still there')
  b.breakAll()
  t.equal((await Promise.all(answers)).length, WAITERS + 1)
  t.equal(b.r.seen.length, WAITERS + 1)
})

t.test('a fetch is handed on once: the next leader\'s client leaving too releases the rest', async t => {
  const b = await breaking(t)
  const leaving = new AbortController()
  // The waiters' clients, by the name the upstream sees: the one handed the fetch leaves too.
  const clients = new Map<string, AbortController>()
  const leader = b.get('leader', leaving.signal)
  t.ok(await until(() => b.breaks.has(1)))
  const waiters = Array.from({ length: WAITERS }, (_, i) => {
    const ac = new AbortController()
    clients.set(`waiter ${i}`, ac)
    return b.get(`waiter ${i}`, ac.signal)
  })
  t.ok(await until(() => b.r.gw.gateway.runtime.inFlight === WAITERS + 1))
  leaving.abort()
  t.ok(await until(() => b.breaks.has(2)), 'one waiter went upstream in the leader\'s place')
  clients.get(String(b.r.seen[1]?.headers['x-client']))?.abort()
  t.ok(await until(() => b.r.seen.length === WAITERS + 1, 10_000), 'the rest went upstream while the others were still there')
  b.breakAll()
  t.equal((await Promise.all([leader, ...waiters])).length, WAITERS + 1)
  t.equal(b.r.seen.length, WAITERS + 1)
})
