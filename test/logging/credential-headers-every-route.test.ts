import t from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'

const PARTNER_KEY = 's3cret-partner-key-0123456789'
const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const RESPONSE_CREDENTIALS = Object.fromEntries(['x-auth-token', 'x-partner-token', 'authorization', 'x-api-key', 'api-key', 'apikey', 'cookie']
  .map(name => [name, `s3cret-response-${name}`]))
const REDACTED_RESPONSE = Object.fromEntries(Object.keys(RESPONSE_CREDENTIALS).map(name => [name, '[redacted]']))

// The real process logger (as `portcullis start` makes it): its redaction list is part of what is tested.
t.test('logging.headers: a credential header is redacted on every route, not only where a plugin reads it, in the request and the response', async t => {
  const up = await startUpstream((req, res) => {
    req.resume()
    // A server must answer one of the subprotocols offered: a naive one echoes the token. Spring
    // Session answers with X-Auth-Token; a debugging upstream may echo the credentials it got (not
    // Proxy-Authorization: the gateway drops it from responses).
    res.writeHead(200, { 'sec-websocket-protocol': 's3cret-ws-echo', 'x-upstream': 'yes', ...RESPONSE_CREDENTIALS }).end('ok')
  })
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
logging: { level: info, headers: true, redactHeaders: [X-Auth-Token] }
consumers:
  - { id: partner, credentials: { key-auth: { keys: [ "${PARTNER_KEY}" ] } } }
plugins:
  jwt-auth: { secret: "${SECRET}", from: [ { header: x-jwt } ] }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: secured, match: { path: /api/* }, upstream: up, plugins: { jwt-auth: false, key-auth: { header: X-Partner-Token } } }
  - { name: tokens, match: { path: /jwt/* }, upstream: up }
  - { name: public, match: { path: /pub/* }, upstream: up, plugins: { jwt-auth: false } }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([up.close(), cf.remove()]) })
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, `started (stderr: ${cli.stderr()})`)
  const headers = {
    'x-partner-token': PARTNER_KEY,
    'x-jwt': 's3cret-jwt',
    'x-auth-token': 's3cret-auth-token',
    'sec-websocket-protocol': 'base64url.bearer.authorization.k8s.io.s3cret-ws, v4.channel.k8s.io',
    'x-visible': 'fine'
  }
  for (const path of ['/pub/a', '/api/a']) {
    const res = await request(`${String(ready?.url)}${path}`, { headers: { ...headers, 'x-request-id': path.slice(1, 4) } })
    t.equal(res.statusCode, 200, path)
    await res.body.dump()
    t.match(await cli.waitForLine(l => l.msg === 'request' && l.requestId === path.slice(1, 4)), {
      reqHeaders: { 'x-visible': 'fine', 'x-partner-token': '[redacted]', 'x-jwt': '[redacted]', 'x-auth-token': '[redacted]', 'sec-websocket-protocol': '[redacted]' },
      resHeaders: { 'x-upstream': 'yes', 'sec-websocket-protocol': '[redacted]', ...REDACTED_RESPONSE }
    }, path)
  }
  t.notOk(JSON.stringify(cli.lines).includes('s3cret'), 'no secret anywhere in the log')
})

t.test('logging.redactHeaders takes header names only', async t => {
  await t.rejects(parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  redactHeaders: [ "x auth token" ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`, 'bad.yaml', {}), /bad\.yaml:4:\d+ logging\.redactHeaders\[0\]: must be a header name/)
})
