import t from 'tap'
import { readFileSync } from 'node:fs'
import { GatewayError } from '../src/errors.ts'

// docs/operations.md lists every answer the gateway itself makes: a code added to src/errors.ts
// without a row there is one operators cannot look up.
t.test('every GatewayError code has a row in docs/operations.md with its status', async t => {
  const doc = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8')
  const rows = doc.split('\n').filter(l => /^\| \d{3} \|/.test(l))
  for (const { status, code } of Object.values(GatewayError)) {
    t.ok(rows.some(r => r.startsWith(`| ${status} |`) && r.split('|')[2]?.includes(`\`${code}\``)), `${status} ${code}`)
  }
})
