import t from 'tap'
import { ServerClock } from './server-clock.ts'

// The offset of the server's clock learnt from answers, at chosen instants (local ms, server ms).

t.test('no deadline before an answer; then the call time plus the timeout plus the largest recent offset', async t => {
  const clock = new ServerClock()
  t.equal(clock.deadline(1_000, 100), 0, 'nothing learnt yet')
  // Sent at 1,000, run at the server's 5,000,010: the offset is at most 4,999,010.
  clock.observe(1_000, 5_000_010)
  t.equal(clock.deadline(2_000, 100), 5_001_110)
  clock.observe(1_500, 5_000_505)
  t.equal(clock.deadline(2_000, 100), 5_001_110, 'a smaller bound does not lower it: only later deadlines are safe')
  clock.observe(1_600, 5_000_700)
  t.equal(clock.deadline(2_000, 100), 5_001_200, 'a larger one raises it at once (a server clock set forward)')
})

t.test('bounds older than 10 to 20 s are dropped: a server clock set back is followed; none for 20 s, the last kept', async t => {
  const clock = new ServerClock()
  clock.observe(0, 1_000_000)
  clock.observe(10_000, 900_000)
  t.equal(clock.deadline(15_000, 100), 1_015_100, 'the last period\'s bound still counts')
  clock.observe(20_000, 910_000)
  t.equal(clock.deadline(25_000, 100), 915_100, 'two periods on: only the recent bounds')
  // A pause of Redis's writes: calls queued behind it must still carry a deadline.
  t.equal(clock.deadline(40_000, 100), 930_100, 'no answer for 20 s: the last offset learnt')
  t.equal(clock.deadline(600_000, 100), 1_490_100, 'for as long as none comes')
  clock.observe(60_000, 950_000)
  t.equal(clock.deadline(61_000, 100), 951_100, 'nothing kept from before the gap')
})
