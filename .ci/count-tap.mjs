// Prints "N passed, M failed" from a tap run's TAP output: the results directly inside each
// test file (its subtests and top-level assertions). A failed run with no failing test
// (typecheck, lint, a crash) still counts as one failure.
import { readFileSync } from 'node:fs'

const [file, status] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const m = /^ {4}(not ok|ok) \d+/.exec(line)
  if (m === null) continue
  if (/# (SKIP|TODO)/i.test(line)) skipped++
  else if (m[1] === 'ok') passed++
  else failed++
}
if (Number(status) !== 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
