import t from 'tap'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { StoreErrorLog } from './store-errors.ts'

// Store failures logged at most once per 10 s, at chosen instants (ms), with the count since the last line.

t.test('the first failure is logged at once; the next within 10 s only counted; the line after says how many', async t => {
  const { log, lines } = memoryLogger()
  const errors = new StoreErrorLog(log)
  errors.report(new Error('Connection is closed.'), 'shared', 'allow', 5_000)
  t.equal(lines.length, 1)
  t.match(lines[0], {
    level: 40,
    store: 'shared',
    error: 'Connection is closed.',
    failures: 1,
    onStoreError: 'allow',
    msg: 'rate-limit: store "shared" failed; requests are allowed unlimited while it does (logged at most every 10s)'
  })
  errors.report(new Error('a'), 'shared', 'allow', 5_001)
  errors.report(new Error('b'), 'shared', 'allow', 14_999.5)
  t.equal(lines.length, 1, 'not within 10 s of the last line')
  errors.report(new Error('Command timed out'), 'shared', 'allow', 15_000)
  t.equal(lines.length, 2, 'logged again 10 s after the last line')
  t.match(lines[1], { error: 'Command timed out', failures: 3 })
  errors.report(new Error('c'), 'shared', 'allow', 24_999)
  t.equal(lines.length, 2, 'the window counts from the last line, not the first')
  errors.report(new Error('d'), 'shared', 'allow', 25_000)
  t.match(lines[2], { error: 'd', failures: 2 })
})

t.test('onStoreError: deny says the requests are denied', async t => {
  const { log, lines } = memoryLogger()
  new StoreErrorLog(log).report(new Error('x'), 'other', 'deny', 0)
  t.match(lines[0], { store: 'other', failures: 1, onStoreError: 'deny', msg: 'rate-limit: store "other" failed; requests are denied (503) while it does (logged at most every 10s)' })
})
