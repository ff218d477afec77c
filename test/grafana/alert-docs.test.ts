import t from 'tap'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

const rules = parse(readFileSync(new URL('../../grafana/alerts/portcullis.rules.yaml', import.meta.url), 'utf8')) as
  { groups: Array<{ rules: Array<{ alert?: string, for?: string, labels?: { severity?: string } }> }> }
const docs = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8')

t.test('docs/metrics.md lists every alert of the rules file, with its for and severity, and no other', async t => {
  const alerts = rules.groups.flatMap(g => g.rules).filter(r => r.alert !== undefined)
  t.ok(alerts.length >= 13, `${alerts.length} alerts in the file`)
  // The table's rows: | `Name` | fires when | for | severity |
  const rows = new Map([...docs.matchAll(/^\| `(Portcullis\w+)` \|(.*)\|$/gm)].map(m => [m[1] as string, (m[2] as string).split('|').map(c => c.trim())]))
  for (const alert of alerts) {
    const cells = rows.get(alert.alert as string)
    if (cells === undefined) { t.fail(`${alert.alert} is not in the alerts table`); continue }
    t.equal(cells.at(-2), alert.for ?? '', `${alert.alert}: for`)
    t.equal(cells.at(-1), alert.labels?.severity, `${alert.alert}: severity`)
  }
  t.same([...rows.keys()].filter(name => !alerts.some(a => a.alert === name)), [], 'no alert the file does not have')
})
