import t, { type Test } from 'tap'
import type { RedisProcess } from '../helpers/redis.ts'
import { watchedStore, type WatchedStore } from '../helpers/watched-store.ts'
import { callUntil } from '../helpers/wait.ts'

// A store down for timeouts comes up with no call once the server answers again, even when a call
// failed on its new connection before the idle-up (that idle-up gave up, for good), or when it
// stalled again under 5 s after its reconnect (no new connection, no ready check to start one).

interface Setup extends WatchedStore {
  /** Freezes the server (SIGSTOP) until the returned function is called. */
  freeze (): () => void
}

async function setup (t: Test): Promise<Setup> {
  // 500 ms: no loaded machine times a call out, a frozen server does.
  const watched = await watchedStore(t, 'timeouts', 'tu:', 500)
  const redis = watched.redis
  const freeze = () => {
    const pid = redis.pid as number
    process.kill(pid, 'SIGSTOP')
    let frozen = true
    const thaw = () => { if (frozen) { frozen = false; process.kill(pid, 'SIGCONT') } }
    t.teardown(thaw)
    return thaw
  }
  return { ...watched, freeze }
}

/**
 * The server frozen until the store is down for calls timing out (it reconnects then, unless it did
 * under 5 s ago), and until those calls have failed (thawed sooner, it would answer the last in time).
 */
async function stalled (t: Test, s: Setup): Promise<void> {
  const thaw = s.freeze()
  const calls: Array<Promise<unknown>> = []
  t.ok(await callUntil(() => { const call = s.store.get('k'); calls.push(call); return call }, () => s.store.snapshot().state === 'down', 5_000), 'down once calls have timed out for a second')
  await Promise.allSettled(calls)
  thaw()
}

const clients = async (redis: RedisProcess) => (await redis.cli('CLIENT', 'LIST')).split('\n').map(line => ({ id: Number(/\bid=(\d+)/.exec(line)?.[1]), cmd: /\bcmd=(\S+)/.exec(line)?.[1] }))

t.test('a call timed out on the reconnect\'s new connection before its idle-up: up with no call later', async t => {
  const s = await setup(t)
  const before = Math.max(...(await clients(s.redis)).map(c => c.id))
  await stalled(t, s)
  // The reconnect's connection ready: the store reads maxmemory* at each ready.
  let ready = false
  for (const started = performance.now(); !ready && performance.now() - started < 5_000;) {
    ready = (await clients(s.redis)).some(c => c.id > before && c.cmd === 'config|get')
    if (!ready) await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(ready, 'reconnected')
  t.same(s.states, ['up', 'down'], 'down still: no call answered')
  // Under 5 s after the reconnect: no new one for this call.
  const thaw = s.freeze()
  await t.rejects(s.store.get('k'), { code: 'STORE_UNAVAILABLE', message: /timed out/ }, 'one call times out on it')
  thaw()
  const calls = s.calls()
  // The idle-up 5 s after the ready check finds that call failed: a PING 5 s later.
  const up = await s.next('up', 15_000)
  t.ok(up !== undefined, 'up with no call')
  t.equal(s.calls(), calls, 'no call made')
  t.same(s.states, ['up', 'down', 'up'], `states ${s.states.join(' ')}`)
  t.equal(s.store.snapshot().lastError, null)
  t.equal(await s.store.get('k'), undefined, 'calls answered')
})

t.test('stalled again under 5 s after the reconnect: no new connection, up with no call once the server answers', async t => {
  const s = await setup(t)
  await stalled(t, s)
  t.ok(await callUntil(() => s.store.get('k'), () => s.store.snapshot().state === 'up', 5_000), 'up at a call answered on the new connection')
  const connections = async () => Number(/total_connections_received:(\d+)/.exec(await s.redis.cli('INFO', 'stats'))?.[1])
  const before = await connections()
  const down = s.next('down', 5_000)
  await stalled(t, s)
  const at = await down
  t.ok(at !== undefined, 'down')
  // Less this test's own redis-cli connection.
  t.equal(await connections() - before - 1, 0, 'no reconnect: the last was under 5 s ago')
  const calls = s.calls()
  const up = await s.next('up', 12_000)
  t.ok(up !== undefined, 'up with no call')
  t.equal(s.calls(), calls, 'no call made')
  t.ok(up! - at! >= 4_500, `at a PING 5 s after it went down (${Math.round(up! - at!)} ms)`)
  t.same(s.states, ['up', 'down', 'up', 'down', 'up'])
  t.equal(await s.store.get('k'), undefined, 'calls answered')
})
