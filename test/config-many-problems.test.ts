import t from 'tap'
import { issues } from './helpers/config-issues.ts'

// A generated config can repeat one mistake thousands of times: each is still reported, in file
// order, and a dedented key among them is still one problem (that check once compared every
// problem with every other: 20,000 of them took 50 s).
t.test('2,000 consumers with groups: left empty: 2,000 problems, a dedented key among them still merged', async t => {
  let text = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
consumers:
`
  for (let i = 0; i < 2000; i++) text += i === 1000 ? `  - id: c${i}\n    metadata:\n    tier: gold\n` : `  - id: c${i}\n    groups:\n`
  const found = await issues(t, text)
  t.equal(found.length, 2000)
  t.same(found.slice(0, 2), [
    'gw.yaml:8:12 consumers[0].groups: has no value',
    'gw.yaml:10:12 consumers[1].groups: has no value'
  ])
  t.same(found.slice(999, 1002), [
    'gw.yaml:2006:12 consumers[999].groups: has no value',
    'gw.yaml:2009:5 consumers[1000].tier: "tier" is outside "metadata", which it seems to belong to: check the indentation of "tier"',
    'gw.yaml:2011:12 consumers[1001].groups: has no value'
  ])
  t.equal(found.at(-1), 'gw.yaml:4007:12 consumers[1999].groups: has no value')
})
