import t from 'tap'
import { request } from 'undici'
import { redactHeaders } from '../../src/logging/logger.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { startUpstream } from '../helpers/upstream.ts'

const TEAM_KEY = 'team-key-0123456789abcdef'

// The gateway removes `x_team_token` from the upstream request as a spelling of key-auth's
// X-Team-Token (CGI, WSGI and PHP read it so), yet logged it in clear: only exact names were redacted.
t.test('logging.headers: a credential header spelt with `_` for `-` is redacted, a route\'s and the usual ones alike', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.writeHead(200, { x_auth_token: 'S3CRET-echo', 'x-upstream': 'yes' }).end() })
  t.teardown(() => up.close())
  const gw = await startGateway(`logging: { headers: true }
consumers:
  - { id: team, credentials: { key-auth: { keys: [ ${TEAM_KEY} ] } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: team, match: { path: /team }, upstream: up, plugins: { key-auth: { header: X-Team-Token } } }
  - { name: open, match: { path: /open }, upstream: up }
`)
  t.teardown(() => gw.close())
  for (const path of ['/team', '/open']) {
    const id = path.slice(1)
    const res = await request(`${gw.url}${path}`, {
      headers: { 'x-team-token': TEAM_KEY, x_team_token: 'S3CRET-team', 'x-team_token': 'S3CRET-mixed', x_api_key: 'S3CRET-api', proxy_authorization: 'S3CRET-proxy', x_visible: 'fine', 'x-request-id': id }
    })
    t.equal(res.statusCode, 200, path)
    await res.body.dump()
    t.match(await waitForLog(gw.logs, { msg: 'request', requestId: id }), {
      reqHeaders: { 'x-team-token': '[redacted]', x_team_token: '[redacted]', 'x-team_token': '[redacted]', x_api_key: '[redacted]', proxy_authorization: '[redacted]', x_visible: 'fine' },
      resHeaders: { x_auth_token: '[redacted]', 'x-upstream': 'yes' }
    }, `${path}: a route's credential header is redacted in every spelling on every route, as logging.redactHeaders are`)
  }
  t.notOk(JSON.stringify(gw.logs).includes('S3CRET'), 'no secret anywhere in the log')
})

t.test('redactHeaders: names compared dashed; a copy only when there is something to hide', async t => {
  const names = ['x-team-token', 'x_partner']
  t.same(redactHeaders({ x_team_token: 'a', 'x-partner': 'b', x_partner: 'c', 'x-team-tokens': 'd', x__team_token: 'e' }, names),
    { x_team_token: '[redacted]', 'x-partner': '[redacted]', x_partner: '[redacted]', 'x-team-tokens': 'd', x__team_token: 'e' })
  const plain = { accept: '*/*', x_other: 'o' }
  t.equal(redactHeaders(plain, names), plain, 'nothing to hide: the same object')
})
