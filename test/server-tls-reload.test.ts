import t from 'tap'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { createTestCa } from './helpers/certs.ts'
import { handshake, liveCertificate, presented, tlsGateway } from './helpers/tls-gateway.ts'
import { until } from './helpers/wait.ts'

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
  writeFileSync(file, readFileSync(file, 'utf8').replace('a.pem, key: a.key', 'b.pem, key: b.key'))
  t.ok(await until(() => gw.reloader.last?.result === 'success', 10_000))
  t.equal(await presented(gw, ca), 'b')
  const reloads = gw.logs.filter(l => l.msg === 'config reloaded').length
  // b's files, named only since the reload, change: a reload (to c's certificate).
  copyFileSync(c.certFile, join(ca.certFile, '..', 'b.pem'))
  copyFileSync(c.keyFile, join(ca.certFile, '..', 'b.key'))
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'config reloaded').length > reloads, 10_000))
  t.equal(await presented(gw, ca), 'c')
  t.equal(gw.logs.filter(l => l.msg === 'config reloaded').length, reloads + 1, 'one reload for the renewal')
})
