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
