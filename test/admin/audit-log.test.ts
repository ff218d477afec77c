import t from 'tap'
import { request } from 'undici'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'
import { adminPort } from '../helpers/admin-port.ts'
import { until } from '../helpers/wait.ts'

const TOKEN = 'admin-token-0123456789abcdef'
const READ = 'read-token-0123456789abcdef'

// The admin listener logged nothing of who was refused, nor of who reloaded or purged.
t.test('the admin API\'s audit trail: each refusal, and each call that may change something, with who made it; never a token', async t => {
  const a = await namedUpstream('a')
  const yaml = gatewayYaml({ a: [a.url] }, '  - { name: cached, match: { path: "/*" }, upstream: a, plugins: { cache: {} } }')
    .replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${TOKEN}"\n  readToken: "${READ}"`)
  const cf = await configFile(yaml)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const call = async (method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}, body?: string) => {
    const res = await request(`${gw.adminUrl}${path}`, { method, headers, body })
    await res.body.dump()
    return res.statusCode
  }
  const admin = { authorization: `Bearer ${TOKEN}` }
  const json = { ...admin, 'content-type': 'application/json' }

  t.equal(await call('POST', '/config/reload'), 401)
  t.equal(await call('POST', '/config/reload', { authorization: `Bearer ${READ}` }), 403)
  t.equal(await call('GET', '/config', { ...admin, origin: 'https://evil.example' }), 403)
  t.equal(await call('POST', '/config/reload', { ...admin, 'content-type': 'text/plain' }, 'x'), 415)
  const refusals = () => gw.logs.filter(l => l.msg === 'admin request refused')
  t.ok(await until(() => refusals().length === 4), 'a line per refusal')
  t.match(refusals(), [
    { level: 40, clientIp: '127.0.0.1', method: 'POST', path: '/config/reload', status: 401, error: 'unauthorized' },
    { level: 40, clientIp: '127.0.0.1', method: 'POST', path: '/config/reload', status: 403, error: 'read_only_token' },
    { level: 40, clientIp: '127.0.0.1', method: 'GET', path: '/config', status: 403, error: 'origin_refused' },
    { level: 40, clientIp: '127.0.0.1', method: 'POST', path: '/config/reload', status: 415, error: 'unsupported_media_type' }
  ])
  // A client refused again and again: limited (one line per code and address every 10 s).
  for (let i = 0; i < 5; i++) t.equal(await call('POST', '/config/reload'), 401)
  t.equal(refusals().filter(l => l.error === 'unauthorized').length, 1, 'repeated refusals are counted, not each logged')

  t.equal(await call('GET', '/config', admin), 200)
  t.equal(await call('POST', '/config/reload', admin), 200)
  t.equal(await call('POST', '/plugins/cache/purge', json, '{"all": true}'), 200)
  const calls = () => gw.logs.filter(l => l.msg === 'admin call')
  t.ok(await until(() => calls().length === 2), 'a line per call that may change something, none for reads')
  t.match(calls(), [
    { level: 30, clientIp: '127.0.0.1', method: 'POST', path: '/config/reload', status: 200, trigger: 'admin' },
    { level: 30, clientIp: '127.0.0.1', method: 'POST', path: '/plugins/cache/purge', status: 200 }
  ])
  const logged = JSON.stringify(gw.logs)
  t.notMatch(logged, TOKEN, 'no token logged')
  t.notMatch(logged, READ)
})

// It logged the target as sent: a URL's password, a path parameter, a fragment.
t.test('a refused request\'s line logs its target as the gateway\'s rejected lines do: no userinfo, path parameter, query nor fragment', async t => {
  const { gw, port, raw } = await adminPort(t, TOKEN)
  t.equal((await raw([`GET http://admin:PW_SECRET@127.0.0.1:${port}/config HTTP/1.1`, 'Host: 127.0.0.1'])).status, 401, 'userinfo')
  t.equal((await raw(['GET /config;jsessionid=SEMI_SECRET?q=QUERY_SECRET HTTP/1.1', 'Host: 127.0.0.1', 'Origin: https://a.example'])).status, 403, 'a path parameter')
  t.equal((await raw(['GET /config#access_token=FRAG_SECRET HTTP/1.1', 'Host: 127.0.0.1'])).status, 400, 'a fragment')
  const refusals = () => gw.logs.filter(l => l.msg === 'admin request refused')
  t.ok(await until(() => refusals().length === 3), 'each logged')
  t.match(refusals(), [
    { status: 401, error: 'unauthorized', path: `http://[redacted]@127.0.0.1:${port}/config` },
    { status: 403, error: 'origin_refused', path: '/config;…' },
    { status: 400, error: 'bad_request', path: '/config#…' }
  ])
  t.notMatch(JSON.stringify(gw.logs), /_SECRET/, 'no secret logged')
})

// Logged as `admin call ... status 415 trigger: admin`, though no reload happened.
t.test('a chunked body of another type, refused at its first byte, is logged as a refused request, not as an admin call', async t => {
  const { gw, raw } = await adminPort(t)
  const post = ['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1']
  t.equal((await raw([...post, 'Content-Type: text/plain', 'Transfer-Encoding: chunked'], '1\r\na\r\n0\r\n\r\n')).status, 415)
  t.equal((await raw(post)).status, 200, 'then a reload')
  const lines = (msg: string) => gw.logs.filter(l => l.msg === msg)
  t.ok(await until(() => lines('admin call').length > 0), 'the reload is logged')
  t.match(lines('admin request refused'), [{ level: 40, clientIp: '127.0.0.1', method: 'POST', path: '/config/reload', status: 415, error: 'unsupported_media_type' }], 'the refusal')
  t.match(lines('admin call'), [{ path: '/config/reload', status: 200, trigger: 'admin' }], 'the reload alone is an admin call')
  t.equal(lines('admin call').length, 1)
})
