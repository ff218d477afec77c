import t, { type Test } from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

// A window far longer than the test: the refusals after the first are held back, their summary
// due only at its end (read as each limiter is made).
process.env.PORTCULLIS_LOG_LIMIT_MS = '600000'

// Auth refusals' lines are limited per route, plugin and reason; the summary of those held back
// was lost at a stop, and came only at the window's end after a reload had retired the config (its
// plugins disposed). Both now flush it, as the gateway's other limited lines.

const INVALID = 'key-auth: the API key is not valid'

async function refusedThrice (t: Test): Promise<{ gw: TestGateway, yaml: string }> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const yaml = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, plugins: { key-auth: {} } }
`
  const gw = await startGateway(yaml)
  t.teardown(() => gw.close())
  for (let i = 0; i < 3; i++) {
    const res = await request(`${gw.url}/keys`, { headers: { 'x-api-key': `wrong-${i}` } })
    await res.body.dump()
    t.equal(res.statusCode, 401)
  }
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request').length === 3), 'every access line')
  t.equal(gw.logs.filter(l => l.msg === INVALID).length, 1, 'one refusal logged, two held back')
  return { gw, yaml }
}

const summary = (gw: TestGateway) => gw.logs.find(l => typeof l.msg === 'string' && l.msg.startsWith(`2 more like "${INVALID}"`))

t.test('a stop logs the summary of the refusals held back', async t => {
  const { gw } = await refusedThrice(t)
  t.equal(summary(gw), undefined, 'no summary before')
  await gw.close()
  t.match(summary(gw), { level: 30, route: 'keys', plugin: 'key-auth', reason: 'invalid_key', status: 401, suppressed: 2 })
})

t.test('a reload logs the summary of the refusals held back on the config it retires', async t => {
  const { gw, yaml } = await refusedThrice(t)
  t.ok(await gw.apply(await parseConfig(`${yaml}  - { name: more, match: { path: /more }, upstream: up }\n`, 'test.yaml', {})), 'reloaded')
  t.ok(await waitForLog(gw.logs, { suppressed: 2, route: 'keys' }), 'the summary once the old config is retired')
  t.match(summary(gw), { level: 30, route: 'keys', plugin: 'key-auth', reason: 'invalid_key', status: 401, suppressed: 2 })
})
