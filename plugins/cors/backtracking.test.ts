import t from 'tap'
import { backtrackingProblem } from './backtracking.ts'

/** `(?:\xNN|...)` of k single characters from `from`. */
const alternatives = (from: number, k: number) => `(?:${Array.from({ length: k }, (_, i) => `\\x${(from + i).toString(16).padStart(2, '0')}`).join('|')})`

t.test('the budget bounds the check itself: two loops of many single-character alternatives are refused as too complex to check', async t => {
  // Few product states, but follow x follow (x follow) transitions looked at: 29 s at k = 96 when only states were charged.
  for (const k of [64, 96]) {
    t.equal(backtrackingProblem(`^${alternatives(1, k)}*${alternatives(0x81, k)}*$`, ''),
      'too complex to check for slow matching (ReDoS): split it into several simpler entries', `k = ${k}`)
  }
  t.equal(backtrackingProblem(`^${alternatives(1, 4)}*${alternatives(0x81, 4)}*$`, ''), undefined, 'a few alternatives are checked, and load')
})
