import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'

// localhost resolves to 127.0.0.1 or ::1: one of them on the same port as localhost passed
// validate, then start failed with "already in use". Not looked up at validate: either collides.
const listeners = (server: string, admin: string) => `server:
  listen: { host: "${server}", port: 8080 }
admin:
  listen: { host: "${admin}", port: 8080 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
`

t.test('localhost and a loopback address it resolves to, on one port, are refused at validate', async t => {
  const shared = (host: string) => `gw.yaml:4:38 admin.listen.port: 8080 is also server.listen.port (on ${host}): two listeners cannot share a port; give this one another`
  t.same(await issues(t, listeners('127.0.0.1', 'localhost')), [shared('127.0.0.1')])
  t.same(await issues(t, listeners('::1', 'localhost')), [shared('::1')])
  t.same(await issues(t, listeners('LocalHost', '127.0.0.1')), [shared('localhost')])
  await t.resolves(parseConfig(listeners('127.0.0.2', 'localhost'), 'gw.yaml', {}), 'localhost is not 127.0.0.2')
})
