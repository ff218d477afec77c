import t from 'tap'
import { LogLimiter } from '../../src/logging/log-limiter.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { timersSetBy } from '../helpers/timers.ts'
import { until } from '../helpers/wait.ts'

/** A limiter on a fake clock (advance `clock.ms`), and the lines it logged. */
function limited (options: { maxKeys?: number } = {}) {
  const { log, lines } = memoryLogger()
  const clock = { ms: 0 }
  const limiter = new LogLimiter(log, { ...options, now: () => clock.ms })
  t.teardown(() => limiter.flush())
  return { limiter, lines, clock }
}

t.test('the first line of a key in a window is logged, the others counted; the window ends with one line saying how many', async t => {
  const { limiter, lines, clock } = limited()
  const allowed = []
  for (let i = 0; i < 5; i++, clock.ms += 1_000) allowed.push(limiter.allow('u\0t', 'error', { upstream: 'u' }, 'busy'))
  t.same(allowed, [true, false, false, false, false])
  t.equal(limiter.allow('other', 'error', {}, 'busy'), true, 'another key has its own window')
  t.equal(limiter.allow('u\0t', 'error', {}, 'not busy'), true, 'so has another message')
  t.same(lines, [], 'no summary before the window ends')
  clock.ms = 10_000
  t.equal(limiter.allow('u\0t', 'error', { upstream: 'u' }, 'busy'), true, 'a new window: logged again')
  t.same(lines.map(l => ({ level: l.level, upstream: l.upstream, suppressed: l.suppressed, msg: l.msg })),
    [{ level: 50, upstream: 'u', suppressed: 4, msg: '4 more like "busy" in the last 10 s' }], 'at its level, with the key\'s fields')
})

t.test('a window with no line counted ends without a summary', async t => {
  const { limiter, lines, clock } = limited()
  t.equal(limiter.allow('k', 'warn', {}, 'm'), true)
  clock.ms = 60_000
  t.equal(limiter.allow('k', 'warn', {}, 'm'), true)
  limiter.flush()
  t.same(lines, [])
})

t.test('the summary comes when the window ends, with no line after it', async t => {
  const { log, lines } = memoryLogger()
  const limiter = new LogLimiter(log, { windowMs: 100 })
  t.teardown(() => limiter.flush())
  for (let i = 0; i < 3; i++) limiter.allow('k', 'warn', { kind: 'k' }, 'slow')
  t.ok(await until(() => lines.length > 0, 10_000), 'logged by its timer')
  t.match(lines, [{ level: 40, kind: 'k', suppressed: 2, msg: '2 more like "slow" in the last 1 s' }])
})

t.test('keys are bounded per message: past maxKeys, a new key\'s lines share one window, its first line logged; other messages keep theirs', async t => {
  const { limiter, lines } = limited({ maxKeys: 4 })
  const allowed = Array.from({ length: 100 }, (_, i) => limiter.allow(`client ${i}`, 'error', { key: i }, 'plugin failed'))
  t.equal(allowed.filter(Boolean).length, 5, 'the first 4 keys logged, then the first of the rest')
  t.equal(limiter.allow('client 0', 'error', {}, 'plugin failed'), false, 'a key followed still counts its own')
  // A client flooding one message does not hide the first line of another (an upstream failing meanwhile).
  t.equal(limiter.allow('u\0t\0ECONNREFUSED', 'warn', { upstream: 'u' }, 'upstream request failed'), true, 'another message: logged')
  limiter.flush()
  t.same(lines.map(l => [l.msg, l.key, l.suppressed]).sort(), [
    ['1 more like "plugin failed" in the last 1 s', 0, 1],
    ['95 more like "plugin failed" in the last 1 s', undefined, 95]
  ])
})

t.test('one timer for the summaries, however many lines are counted', async t => {
  const { log } = memoryLogger()
  const limiter = new LogLimiter(log)
  t.teardown(() => limiter.flush())
  const timers = await timersSetBy(() => { for (let i = 0; i < 1_000; i++) limiter.allow(`k${i % 10}`, 'warn', {}, 'm') })
  t.equal(timers, 1)
})

t.test('flush logs what was counted at once, and starts anew', async t => {
  const { limiter, lines } = limited()
  limiter.allow('k', 'warn', { kind: 'k' }, 'm')
  limiter.allow('k', 'warn', { kind: 'k' }, 'm')
  limiter.flush()
  t.match(lines, [{ kind: 'k', suppressed: 1, msg: '1 more like "m" in the last 1 s' }])
  t.equal(limiter.allow('k', 'warn', { kind: 'k' }, 'm'), true)
})

// One route's plugin errors quoting the request took all 64 keys of `plugin failed`: another
// route's first failure then went into the shared window, unlogged.
t.test('with a group, keys are bounded per message and group: a group past maxKeys leaves the others theirs; its shared window\'s summary has the group\'s fields', async t => {
  const { limiter, lines } = limited({ maxKeys: 4 })
  const search = { key: 'search\0picky', fields: { route: 'search', plugin: 'picky' } }
  const allowed = Array.from({ length: 10 }, (_, i) => limiter.allow(`search\0picky\0bad input ${i}`, 'error', { route: 'search' }, 'plugin failed', search))
  t.equal(allowed.filter(Boolean).length, 5, 'the first 4 keys logged, then the first of the rest')
  t.equal(limiter.allow('payments\0ledger\0down', 'error', { route: 'payments' }, 'plugin failed', { key: 'payments\0ledger', fields: { route: 'payments', plugin: 'ledger' } }), true, 'another group: logged')
  limiter.flush()
  t.match(lines, [{ route: 'search', plugin: 'picky', suppressed: 5, msg: '5 more like "plugin failed" in the last 1 s' }])
  t.equal(lines.length, 1)
})

t.test('PORTCULLIS_LOG_LIMIT_MS set but blank is unset: 10 s (Number(\'\') is 0, every line logged)', async t => {
  const before = process.env.PORTCULLIS_LOG_LIMIT_MS
  t.teardown(() => { if (before === undefined) delete process.env.PORTCULLIS_LOG_LIMIT_MS; else process.env.PORTCULLIS_LOG_LIMIT_MS = before })
  for (const blank of ['', ' ']) {
    process.env.PORTCULLIS_LOG_LIMIT_MS = blank
    const { log } = memoryLogger()
    const limiter = new LogLimiter(log)
    t.same([limiter.allow('k', 'warn', {}, 'm'), limiter.allow('k', 'warn', {}, 'm')], [true, false], JSON.stringify(blank))
    limiter.flush()
  }
})
