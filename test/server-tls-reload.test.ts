import t from 'tap'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { createTestCa } from './helpers/certs.ts'
import { handshake, liveCertificate, presented, tlsGateway } from './helpers/tls-gateway.ts'
import { callUntil, until } from './helpers/wait.ts'

t.test('a renewed certificate file is picked up under load: zero failed requests, open connections continue', async t => {
  const { ca, dir, first, second, install } = liveCertificate(t)
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: live.pem, key: live.key } ] }', { watch: true })
  const url = `${gw.url}/x`
  const connect = { ca: ca.cert, servername: 'api.example.com' }
  // Keep-alive connections, opened before the renewal and used throughout.
  const kept = new Agent({ connections: 2, connect })
  // A new connection, so a new handshake, for every request.
  const fresh = new Agent({ connect, pipelining: 0 })
  t.teardown(() => Promise.all([kept.close(), fresh.close()]))
  const failures: string[] = []
  const seen = { kept: 0, fresh: 0 }
  const cnsOnFresh = new Set<string>()
  let stop = false
  const loop = async (kind: 'kept' | 'fresh') => {
    while (!stop) {
      try {
        const res = await request(url, { dispatcher: kind === 'kept' ? kept : fresh, reset: kind === 'fresh' })
        await res.body.dump()
        if (res.statusCode === 200) seen[kind]++
        else failures.push(`${kind}: status ${res.statusCode}`)
      } catch (err) {
        failures.push(`${kind}: ${(err as Error).message}`)
      }
    }
  }
  const before = await handshake(gw, ca, 'api.example.com')
  t.equal(before.cn, 'first')
  const load = [loop('kept'), loop('kept'), loop('fresh'), loop('fresh')]
  t.ok(await until(() => seen.kept > 20 && seen.fresh > 10, 20_000), 'load is running')

  // The renewal writes the certificate, then the key (as `cp` or certbot do): one reload, after both.
  install(second)
  let now = ''
  const deadline = performance.now() + 20_000
  while (now !== 'second' && performance.now() < deadline) {
    now = await presented(gw, ca, 'api.example.com')
    cnsOnFresh.add(now)
  }
  t.equal(now, 'second', 'new handshakes get the renewed certificate')
  const atSwitch = { ...seen }
  t.ok(await until(() => seen.kept > atSwitch.kept + 20 && seen.fresh > atSwitch.fresh + 10, 20_000), 'load goes on after the reload')
  stop = true
  await Promise.all(load)
  t.same(failures, [], 'no request failed')
  t.same([...cnsOnFresh].filter(cn => cn !== 'first' && cn !== 'second'), [], 'only the old and the new certificate were ever presented')
  t.match(gw.reloader.last, { trigger: 'certificate', result: 'success' })
  t.equal(await presented(gw, ca), 'second', 'also without SNI')

  // The connection opened before the renewal still serves a request.
  before.socket.write('GET /x HTTP/1.1\r\nhost: api.example.com\r\n\r\n')
  const head = await new Promise<string>(resolve => before.socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))))
  t.match(head, /^HTTP\/1\.1 200 /)
  before.socket.destroy()

  // A broken renewal: a config error at its key, and the running certificate keeps serving.
  writeFileSync(join(dir, 'live.key'), first.key)
  t.ok(await until(() => gw.reloader.last?.result === 'invalid', 10_000), 'the mismatched key is refused')
  t.match(gw.reloader.last, { trigger: 'certificate', issues: [{ path: 'server.tls.certificates[0].key', message: /^does not fit the certificate/ }] })
  t.equal(await presented(gw, ca, 'api.example.com'), 'second')
})

t.test('the files a reload names are the ones watched; a renewal of both files is one reload', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('a', 'DNS:api.example.com')
  ca.issue('b', 'DNS:api.example.com')
  const c = ca.issue('c', 'DNS:api.example.com')
  const { gw, file } = await tlsGateway(t, ca, '{ certificates: [ { cert: a.pem, key: a.key } ] }', { watch: true })
  t.equal(await presented(gw, ca), 'a')
  // Until b is presented: reloader.last may say success already, for a reload of the files written just before the start.
  writeFileSync(file, readFileSync(file, 'utf8').replace('a.pem, key: a.key', 'b.pem, key: b.key'))
  let shown = 'a'
  t.ok(await callUntil(async () => { shown = await presented(gw, ca) }, () => shown === 'b', 10_000))
  t.equal(await presented(gw, ca), 'b')
  const reloads = gw.logs.filter(l => l.msg === 'config reloaded').length
  // b's files, named only since the reload, change: a reload (to c's certificate).
  copyFileSync(c.certFile, join(ca.certFile, '..', 'b.pem'))
  copyFileSync(c.keyFile, join(ca.certFile, '..', 'b.key'))
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'config reloaded').length > reloads, 10_000))
  t.equal(await presented(gw, ca), 'c')
  t.equal(gw.logs.filter(l => l.msg === 'config reloaded').length, reloads + 1, 'one reload for the renewal')
})

t.test('clientAuth reloads: started with require, then none, require, request, require, none, on the default certificate and SNI-chosen ones', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const clients = createTestCa('Client CA', fn => t.teardown(fn))
  ca.issue('default', 'DNS:default.example')
  ca.issue('api', 'DNS:api.example.com')
  const billing = clients.issue('billing', 'DNS:billing', { client: true })
  copyFileSync(clients.certFile, join(ca.certFile, '..', 'clients.pem'))
  const tls = (mode: string) => `{ certificates: [ { cert: default.pem, key: default.key }, { cert: api.pem, key: api.key } ]${mode === 'none' ? '' : `, clientAuth: { ca: clients.pem, mode: ${mode} }`} }`
  const { gw, file } = await tlsGateway(t, ca, tls('require'))
  /** The client CN a plugin sees ("-": none), or "refused"; `servername` undefined: no SNI, the listener's default. */
  const seen = async (servername: string | undefined, client: boolean): Promise<string> => {
    const agent = new Agent({ connect: { ca: ca.cert, servername, checkServerIdentity: () => undefined, cert: client ? billing.cert : undefined, key: client ? billing.key : undefined } })
    try {
      const res = await request(`${gw.url}/x`, { dispatcher: agent })
      return ((await res.body.json()) as { headers: Record<string, string> }).headers['x-client-cn'] as string
    } catch {
      return 'refused'
    } finally {
      await agent.destroy()
    }
  }
  const expected = { none: ['-', '-'], require: ['refused', 'billing'], request: ['-', 'billing'] }
  for (const [i, mode] of (['require', 'none', 'require', 'request', 'require', 'none', 'require'] as const).entries()) {
    if (i > 0) {
      writeFileSync(file, readFileSync(file, 'utf8').replace(/ {2}tls: .*\n/, `  tls: ${tls(mode)}\n`))
      t.match(await gw.reloader.reload('admin'), { result: 'success' }, `reload to ${mode}`)
    }
    for (const servername of [undefined, 'default.example', 'api.example.com']) {
      t.same([await seen(servername, false), await seen(servername, true)], expected[mode], `${mode}, SNI ${servername ?? '(none)'}: without and with a client certificate`)
    }
  }
  // A client CA emptied (a renewal caught half-written): a config error, the running CA keeps serving.
  writeFileSync(join(ca.certFile, '..', 'clients.pem'), '')
  t.match(await gw.reloader.reload('admin'), { result: 'invalid', issues: [{ path: 'server.tls.clientAuth.ca', message: /^not a PEM CA file/ }] })
  t.same([await seen('api.example.com', false), await seen('api.example.com', true)], expected.require)
})

t.test('an expired certificate: served with a warning at start and on a reload that keeps it, refused as a renewal', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const good = ca.issue('good', 'DNS:api.example.com')
  const expired = ca.issue('expired', 'DNS:api.example.com', { days: -1 })
  const dir = join(ca.certFile, '..')
  const install = (c: { certFile: string, keyFile: string }) => { copyFileSync(c.certFile, join(dir, 'live.pem')); copyFileSync(c.keyFile, join(dir, 'live.key')) }
  install(expired)
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: live.pem, key: live.key } ] }')
  const warnings = () => gw.logs.filter(l => l.level === 40 && l.certificate === 'server.tls.certificates[0]')
  t.equal(await presented(gw, ca, 'api.example.com'), 'expired', 'a gateway starts with an expired certificate')
  t.match(warnings(), [{ msg: /^server certificate expired on \d{4}-.*: clients will refuse it/ }], 'and says so')
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, 'a reload that keeps it goes through')
  t.equal(warnings().length, 2, 'and warns again')

  install(good)
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  t.equal(await presented(gw, ca, 'api.example.com'), 'good')
  install(expired)
  t.match(await gw.reloader.reload('admin'), {
    result: 'invalid',
    issues: [{ path: 'server.tls.certificates[0].cert', line: 3, message: /^expired on .*: a reload does not switch to an expired certificate/ }]
  }, 'a renewal to an expired certificate is refused')
  t.equal(await presented(gw, ca, 'api.example.com'), 'good', 'the running certificate keeps serving')
  t.equal(warnings().length, 2)
})

t.test('a certificate event with the files as the active config read them is no reload (the poll after the directory watch)', async t => {
  const { ca, dir, first, second, install } = liveCertificate(t)
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: live.pem, key: live.key } ] }')
  const reloads = () => gw.logs.filter(l => l.msg === 'config reloaded').length
  install(second)
  t.match(await gw.reloader.reload('certificate'), { result: 'success' })
  t.match(await gw.reloader.reload('certificate'), { result: 'unchanged' }, 'the same files again: nothing to do')
  t.equal(reloads(), 1)
  t.match(gw.reloader.last, { result: 'success' }, 'not recorded')

  writeFileSync(join(dir, 'live.key'), first.key)
  t.match(await gw.reloader.reload('certificate'), { result: 'invalid' })
  install(second)
  t.match(await gw.reloader.reload('certificate'), { result: 'unchanged' }, 'the files put back')
  t.match(gw.reloader.last, { trigger: 'certificate', result: 'unchanged' }, 'recorded, so that the failure clears')
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, 'an explicit reload always runs')
  t.equal(reloads(), 2)
  t.equal(await presented(gw, ca, 'api.example.com'), 'second')
})
