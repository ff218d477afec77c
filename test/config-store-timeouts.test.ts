import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'

// commandTimeout: 0 passed the schema; each call then failed at once (its deadline past as it was
// made), and the store went down against a healthy Redis.
const config = (settings: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  r: { type: redis, url: "redis://127.0.0.1:1", ${settings} }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: limited, match: { path: /* }, upstream: up, plugins: { rate-limit: { store: r, limits: [ { name: l, requests: 10, window: 1s } ] } } }
`

t.test('a Redis store\'s commandTimeout and connectTimeout must be more than 0', async t => {
  t.match(await issues(t, config('commandTimeout: 0')), [/stores\.r\.commandTimeout: must be more than 0/])
  t.match(await issues(t, config('connectTimeout: 0ms')), [/stores\.r\.connectTimeout: must be more than 0/])
  t.resolves(parseConfig(config('commandTimeout: 1ms, connectTimeout: 1ms'), 'gw.yaml', {}), 'any positive duration is taken')
})
