import t, { type Test } from 'tap'
import { request } from 'undici'
import { adminPort } from '../helpers/admin-port.ts'
import { headerValues, rawRequest } from '../helpers/raw-http.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'
import { until } from '../helpers/wait.ts'

async function cachedGateway (t: Test) {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: cached, match: { path: "/*" }, upstream: a, plugins: { cache: {} } }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: string) => {
    const res = await request(`${gw.adminUrl as string}${path}`, { method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' } })
    await res.body.dump()
    return res.statusCode
  }
  return { gw, call, calls: () => gw.logs.filter(l => l.msg === 'admin call') }
}

// `/%63onfig/reload` reloaded (Fastify decodes the path) and was audited under that spelling, while
// `/plugins/cache/%70urge` was a 404 (plugin paths matched as sent).
t.test('an endpoint has one spelling: a percent-encoded path is a 404, built-in or plugin, and the audit line names the endpoint', async t => {
  const { gw, call, calls } = await cachedGateway(t)
  t.equal(await call('POST', '/%63onfig/reload'), 404, 'an encoded letter')
  t.equal(await call('POST', '/config/%72eload'), 404)
  t.equal(await call('GET', '/%63onfig'), 404, 'a read too')
  t.equal(await call('POST', '/plugins/cache/%70urge', '{"all": true}'), 404, 'a plugin endpoint alike')
  t.equal(await call('POST', '/%70lugins/cache/purge', '{"all": true}'), 404)
  t.equal((JSON.parse(await (await request(`${gw.adminUrl as string}/config`)).body.text()) as { lastReload: unknown }).lastReload, null, 'no reload ran')

  t.equal(await call('POST', '/config/reload'), 200)
  t.equal(await call('POST', '/config/reload?why=test'), 200)
  t.equal(await call('POST', '/plugins/cache/purge', '{"all": true}'), 200)
  t.ok(await until(() => calls().length === 3))
  t.match(calls(), [
    { method: 'POST', path: '/config/reload', endpoint: '/config/reload', status: 200, trigger: 'admin' },
    { method: 'POST', path: '/config/reload', endpoint: '/config/reload', status: 200, trigger: 'admin' },
    { method: 'POST', path: '/plugins/cache/purge', endpoint: '/plugins/cache/purge', status: 200 }
  ])
})

// A request the HTTP/1.1 absolute-form names: the same endpoint, whatever the target's spelling.
t.test('an absolute-form target is audited under its endpoint', async t => {
  const { gw, port, raw } = await adminPort(t)
  t.equal((await raw([`POST http://127.0.0.1:${port}/config/reload HTTP/1.1`, 'Host: 127.0.0.1'])).status, 200)
  const calls = () => gw.logs.filter(l => l.msg === 'admin call')
  t.ok(await until(() => calls().length === 1))
  t.match(calls()[0], { path: `http://127.0.0.1:${port}/config/reload`, endpoint: '/config/reload', trigger: 'admin' })
})

// `POST http://127.0.0.1/plugins/cache/purge` was a 404 (the plugin endpoint was looked up by the
// whole URL) while `http://127.0.0.1/config/reload` reloaded: every endpoint takes the path of an absolute-form target.
t.test('an absolute-form target reaches the endpoint its path names, a plugin\'s too', async t => {
  const { gw, calls } = await cachedGateway(t)
  const port = Number(new URL(gw.adminUrl as string).port)
  const raw = (line: string, body = '') => rawRequest(port, [line, 'Host: 127.0.0.1', 'Connection: close',
    ...body === '' ? [] : ['Content-Type: application/json', `Content-Length: ${body.length}`]], body)
  t.equal((await raw(`POST http://127.0.0.1:${port}/plugins/cache/purge HTTP/1.1`, '{"all": true}')).status, 200, 'a plugin endpoint')
  const wrongMethod = await raw(`DELETE http://127.0.0.1:${port}/plugins/cache/purge?x=1 HTTP/1.1`)
  t.equal(wrongMethod.status, 405)
  t.same(headerValues(wrongMethod, 'allow'), ['POST'], 'its methods')
  t.equal((await raw(`GET HTTP://127.0.0.1:${port}/healthz HTTP/1.1`)).status, 200, 'a built-in one, whatever the scheme\'s case')
  const root = await raw(`GET http://127.0.0.1:${port} HTTP/1.1`)
  t.equal(root.status, 404)
  t.match(JSON.parse(root.body), { message: 'no admin endpoint /' }, 'no path is /')
  t.ok(await until(() => calls().length === 1))
  t.match(calls(), [{ path: `http://127.0.0.1:${port}/plugins/cache/purge`, endpoint: '/plugins/cache/purge', status: 200 }])
})

// 404s and 405s took a callId without writing a line: gaps that looked like lost audit lines.
t.test('calls are numbered without gaps: a 404 or 405 takes no number', async t => {
  const { call, calls } = await cachedGateway(t)
  t.equal(await call('POST', '/nowhere'), 404)
  t.equal(await call('POST', '/routes'), 405)
  t.equal(await call('PUT', '/config/reload'), 405)
  t.equal(await call('POST', '/plugins/cache/nowhere', '{}'), 404)
  t.equal(await call('DELETE', '/plugins/cache/purge'), 405)
  t.equal(await call('POST', '/config/reload'), 200)
  t.equal(await call('POST', '/nowhere'), 404)
  t.equal(await call('DELETE', '/plugins/nocache/purge'), 404)
  t.equal(await call('POST', '/plugins/cache/purge', '{"all": true}'), 200)
  t.equal(await call('POST', '/%63onfig/reload'), 404)
  t.equal(await call('POST', '/config/reload', 'not json'), 400, 'a body found malformed: no endpoint reached')
  t.equal(await call('POST', '/config/reload'), 200)
  t.ok(await until(() => calls().length === 3))
  t.same(calls().map(l => [l.callId, l.endpoint]), [[1, '/config/reload'], [2, '/plugins/cache/purge'], [3, '/config/reload']])
})
