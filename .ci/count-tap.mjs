// Prints "N passed, M failed" from tap runs' TAP output: the results directly inside each test
// file (its subtests and top-level assertions). A failed run with no failing test (typecheck,
// lint, a crash, a Node that could not be installed) still counts as one failure.
// Arguments: one "label file status" triple per run. With several runs, each gets its own line
// first, and the closing line sums them.
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const total = { passed: 0, failed: 0, skipped: 0 }
const line = (c, label) => label === undefined
  ? `${c.passed} passed, ${c.failed} failed${c.skipped > 0 ? `, ${c.skipped} skipped` : ''}`
  // Worded differently from the closing line, which CI reads.
  : `${label}: passed ${c.passed}, failed ${c.failed}${c.skipped > 0 ? `, skipped ${c.skipped}` : ''}`
const runs = []
// The failing tests, named with their file, printed again just above the totals: CI keeps only
// the end of a long log, so this is where a failure must be visible.
const failures = []
for (let i = 0; i < args.length; i += 3) {
  const [label, file, status] = args.slice(i, i + 3)
  const c = { passed: 0, failed: 0, skipped: 0 }
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch { /* no output: the run did not happen */ }
  let testFile = ''
  // The failed assertions inside the current test, with the start of their diagnostics.
  let details = []
  let diag = 0
  for (const l of text.split('\n')) {
    const f = /^# Subtest: (.*)$/.exec(l)
    if (f !== null) testFile = f[1]
    if (/^ {8,}not ok \d+/.test(l)) { details.push(l.trim()); diag = 30; continue }
    if (diag > 0 && /^ {8,}/.test(l)) {
      diag = l.trim() === '...' ? 0 : diag - 1
      details.push(`  ${l.trim()}`)
      continue
    }
    diag = 0
    const m = /^ {4}(not ok|ok) \d+/.exec(l)
    if (m === null) continue
    if (/# (SKIP|TODO)/i.test(l)) c.skipped++
    else if (m[1] === 'ok') c.passed++
    else {
      c.failed++
      failures.push(`FAILED ${label}: ${testFile}: ${l.trim()}`, ...details.map((d) => `    ${d}`))
    }
    details = []
  }
  if (Number(status) !== 0 && c.failed === 0) c.failed = 1
  runs.push([label, c])
  for (const k of Object.keys(total)) total[k] += c[k]
}
for (const f of failures) console.log(f)
if (runs.length > 1) for (const [label, c] of runs) console.log(line(c, label))
console.log(line(total))
