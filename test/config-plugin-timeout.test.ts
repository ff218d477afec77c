import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'

// server.pluginTimeout: 0 was documented as "hooks have no limit", yet it bounded setup and
// dispose to 0 ms too: any async setup failed the start. It is a config error.
const config = (value: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: ${value}
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up }
`

t.test('server.pluginTimeout must be more than 0', async t => {
  for (const zero of ['0', '0s', '0.0ms', '"${ZERO}"']) {
    t.match(await issues(t, config(zero), { ZERO: '0' }), [/^gw\.yaml:3:\d+ server\.pluginTimeout: must be a duration of more than 0 and at most 24 days/], zero)
  }
  const [tooLong] = await issues(t, config('30d'))
  t.match(tooLong, /server\.pluginTimeout: must be a duration of more than 0 and at most 24 days/, 'too long, as before')
  // It said "units are ms, s, m, h and d: "30d" is written 30d" of a well-written value.
  t.match(tooLong, /\(leave it out for 30s\)$/, 'no respelling of a well-written value')
  for (const positive of ['1', '1ms', '0.5s', '2m']) await t.resolves(parseConfig(config(positive), 'gw.yaml', {}), positive)
})
