import t, { type Test } from 'tap'
import { watchedStore, type WatchedStore } from '../helpers/watched-store.ts'
import { REFUSALS, type Refusal } from '../helpers/redis-refusals.ts'
import { callUntil } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

// A store down for refusal replies keeps its connection: no reconnect, no ready check to bring it up
// once no one calls. It checks on its own (a PING, refused while BUSY or MISCONF lasts): with no
// call after the refusal is over, it is up again, not down for good (portcullis_store_up 0, paging).

type Setup = WatchedStore

async function setup (t: Test): Promise<Setup> {
  // 2 s: a refusal is answered at once; no loaded machine times a call out.
  return await watchedStore(t, 'idle', 'iu:', 2_000)
}

/** Calls refused until the store is down; resolves with when it went down. */
async function refusedDown (t: Test, { store, next }: Setup): Promise<number> {
  const down = next('down', 5_000)
  t.ok(await callUntil(() => store.run(counter, ['{c}:n'], [0]), () => store.snapshot().state === 'down', 5_000), 'down once calls have been refused for a second')
  const at = await down
  if (at === undefined) throw new Error('no down event')
  return at
}

const refusal = (reply: Refusal['reply']): Refusal => REFUSALS.find(r => r.reply === reply)!

// NOREPLICAS is not here: a PING is answered while it lasts (only writes are refused).
for (const reply of ['BUSY', 'MISCONF'] as const) {
  t.test(`${reply}: down for refused calls, up with no call once it is over (a PING 5 s after)`, async t => {
    const s = await setup(t)
    const end = await refusal(reply).start(s.redis)
    const down = await refusedDown(t, s)
    await end()
    // The refused calls' replies are all in: from now on no call is made.
    const calls = s.calls()
    const up = await s.next('up', 15_000)
    t.ok(up !== undefined, 'up with no call')
    t.equal(s.calls(), calls, 'no call made')
    t.ok(up! - down >= 4_500, `at the check 5 s after it went down (${Math.round(up! - down)} ms)`)
    t.same(s.states, ['up', 'down', 'up'])
    t.equal(s.store.snapshot().lastError, null)
    t.equal(await s.store.run(counter, ['{c}:n'], [0]), 1, 'calls answered')
    t.same(s.states, ['up', 'down', 'up'])
  })
}

t.test('MISCONF lasting past the first check: down while the PING is refused, up at the next one, twice as late', async t => {
  const s = await setup(t)
  const end = await refusal('MISCONF').start(s.redis)
  const down = await refusedDown(t, s)
  // The check's PING, refused (reads such as INFO are answered meanwhile).
  const rejected = async () => Number(/^cmdstat_ping:.*rejected_calls=(\d+)/m.exec(await s.redis.cli('INFO', 'commandstats'))?.[1] ?? 0)
  let pings = 0
  for (const started = performance.now(); pings === 0 && performance.now() - started < 10_000;) {
    pings = await rejected()
    if (pings === 0) await new Promise(resolve => setTimeout(resolve, 100))
  }
  const checked = performance.now()
  t.equal(pings, 1, 'checked once')
  t.ok(checked - down >= 4_500, `5 s after it went down (${Math.round(checked - down)} ms)`)
  t.equal(s.store.snapshot().state, 'down', 'down while it is refused')
  await end()
  const calls = s.calls()
  const up = await s.next('up', 15_000)
  t.ok(up !== undefined, 'up with no call')
  t.equal(s.calls(), calls, 'no call made')
  t.ok(up! - checked >= 9_000, `at the next check, 10 s after the first (${Math.round(up! - checked)} ms)`)
  t.same(s.states, ['up', 'down', 'up'])
})
