import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'

// Pipelining to an upstream hands answers to the wrong clients when one runs past its length: said at load.
const config = (pipelining: string) => `
upstreams:
  piped: { targets: [ { url: "http://127.0.0.1:9" } ]${pipelining} }
routes:
  - { name: all, match: { path: /* }, upstream: piped }
`
const WARNING = /^upstream pipelining is on: an answer that runs past its length hands the next answers/

t.test('pipelining above 1 is a warning at load, naming the upstream', async t => {
  const gw = await startGateway(config(', pipelining: 4'))
  t.teardown(() => gw.close())
  t.match(gw.logs.filter(l => WARNING.test(String(l.msg))), [{ level: 40, upstream: 'piped', pipelining: 4 }])
})

t.test('none by default', async t => {
  const gw = await startGateway(config(''))
  t.teardown(() => gw.close())
  t.same(gw.logs.filter(l => WARNING.test(String(l.msg))), [])
})
