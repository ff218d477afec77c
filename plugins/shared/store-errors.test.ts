import t from 'tap'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { StoreErrorLog } from './store-errors.ts'

// Store failures logged at most once per 10 s, at chosen instants (ms), with the count since the last line.

t.test('the first failure is logged at once; the next within 10 s only counted; the line after says how many', async t => {
  const { log, lines } = memoryLogger()
  const errors = new StoreErrorLog(log, { store: 'shared', onStoreError: 'allow' }, 'rate-limit: store "shared" failed; requests are allowed unlimited while it does')
  errors.report(new Error('Connection is closed.'), 5_000)
  t.equal(lines.length, 1)
  t.match(lines[0], {
    level: 40,
    store: 'shared',
    error: 'Connection is closed.',
    failures: 1,
    onStoreError: 'allow',
    msg: 'rate-limit: store "shared" failed; requests are allowed unlimited while it does (logged at most every 10s)'
  })
  errors.report(new Error('a'), 5_001)
  errors.report(new Error('b'), 14_999.5)
  t.equal(lines.length, 1, 'not within 10 s of the last line')
  errors.report(new Error('Command timed out'), 15_000)
  t.equal(lines.length, 2, 'logged again 10 s after the last line')
  t.match(lines[1], { error: 'Command timed out', failures: 3 })
  errors.report(new Error('c'), 24_999)
  t.equal(lines.length, 2, 'the window counts from the last line, not the first')
  errors.report(new Error('d'), 25_000)
  t.match(lines[2], { error: 'd', failures: 2 })
})

t.test('each log counts its own failures: one per plugin (or route), with its own fields and message', async t => {
  const { log, lines } = memoryLogger()
  const one = new StoreErrorLog(log, { store: 'one' }, 'key-auth: store "one" failed')
  const other = new StoreErrorLog(log, { store: 'other', onStoreError: 'deny' }, 'rate-limit: store "other" failed')
  one.report(new Error('x'), 0)
  other.report(new Error('y'), 1)
  one.report(new Error('z'), 2)
  t.equal(lines.length, 2)
  t.match(lines[0], { store: 'one', error: 'x', failures: 1, msg: 'key-auth: store "one" failed (logged at most every 10s)' })
  t.notOk('onStoreError' in (lines[0] as object), 'only the fields given')
  t.match(lines[1], { store: 'other', error: 'y', failures: 1, onStoreError: 'deny', msg: 'rate-limit: store "other" failed (logged at most every 10s)' })
})
