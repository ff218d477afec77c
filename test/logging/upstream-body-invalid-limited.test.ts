import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

// A window far longer than the test: the lines after the first are held back until the stop.
process.env.PORTCULLIS_LOG_LIMIT_MS = '600000'

// A body that does not decode (or decodes past compress's bound) is one a client can ask for at
// will, once a request: its warning is limited per route and target, as upstream failures are.

const MSG = 'upstream body could not be read as sent'

t.test('broken bodies asked for again and again: one warning, then a summary', async t => {
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': 64 }).end(Buffer.alloc(64, 7))
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: broken, match: { path: /* }, upstream: up, plugins: { compress: {} } }
`)
  t.teardown(() => gw.close())
  for (let i = 0; i < 5; i++) {
    const res = await request(`${gw.url}/b${i}`)
    await res.body.dump()
    t.equal(res.statusCode, 502, 'not decodable for a client taking no coding')
  }
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request').length === 5), 'every access line')
  t.equal(gw.logs.filter(l => l.msg === MSG).length, 1, 'one warning, four held back')
  await gw.close()
  t.match(gw.logs.find(l => typeof l.msg === 'string' && l.msg.startsWith(`4 more like "${MSG}"`)), { level: 40, route: 'broken', target: up.url, suppressed: 4 })
})
