import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { RedisStore, type RedisStoreSettings } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { createTestCa } from '../helpers/certs.ts'
import { freePort } from '../helpers/ports.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

const ca = createTestCa('redis-ca', fn => t.teardown(fn))
const cert = ca.issue('redis', 'IP:127.0.0.1')
// Servers accept TLS with this certificate; clients need none of their own.
const TLS = ['--tls-cert-file', cert.certFile, '--tls-key-file', cert.keyFile, '--tls-ca-cert-file', ca.certFile, '--tls-auth-clients', 'no']
const PRIMARY_PW = 'primary-pw'
const SENTINEL_PW = 'sentinel-pw'

/** A primary requiring PRIMARY_PW, on a TLS port only (its plain one closed once it answers there). */
async function tlsPrimary (t: Test): Promise<number> {
  const server = await RedisProcess.start([...TLS, '--requirepass', PRIMARY_PW])
  t.teardown(() => server.stop())
  const cli = (...args: string[]) => server.cli('--no-auth-warning', '-a', PRIMARY_PW, ...args)
  for (;;) {
    const port = await freePort()
    if (await cli('CONFIG', 'SET', 'tls-port', String(port)) !== 'OK') continue // taken meanwhile
    t.equal(await cli('CONFIG', 'SET', 'port', '0'), 'OK', 'the primary speaks TLS only')
    return port
  }
}

/**
 * A sentinel requiring SENTINEL_PW, monitoring the primary at `port` (over TLS with `tlsToPrimary`),
 * reached by the store on its TLS port; its plain one is the test's.
 */
async function sentinel (t: Test, port: number, tlsToPrimary: boolean): Promise<{ server: RedisProcess, tlsAddress: string, cli (...args: string[]): Promise<string> }> {
  const tlsPort = await freePort()
  const server = await RedisProcess.start(['--sentinel', ...TLS, '--tls-port', String(tlsPort), '--tls-replication', tlsToPrimary ? 'yes' : 'no', '--requirepass', SENTINEL_PW],
    `sentinel monitor mymaster 127.0.0.1 ${port} 1\nsentinel auth-pass mymaster ${PRIMARY_PW}\n`)
  t.teardown(() => server.stop())
  return { server, tlsAddress: `127.0.0.1:${tlsPort}`, cli: (...args) => server.cli('--no-auth-warning', '-a', SENTINEL_PW, ...args) }
}

/** A TCP proxy to `port`, closed at teardown, keeping what each connection carried to it. */
async function recordingProxy (t: Test, port: number): Promise<{ port: number, connections: Buffer[] }> {
  const connections: Buffer[] = []
  const open = new Set<Socket>()
  const proxy = createServer(client => {
    const i = connections.push(Buffer.alloc(0)) - 1
    const upstream = connect(port, '127.0.0.1')
    client.on('data', (chunk: Buffer) => { connections[i] = Buffer.concat([connections[i] as Buffer, chunk]) })
    client.pipe(upstream).pipe(client)
    for (const s of [client, upstream]) {
      open.add(s)
      s.on('error', () => {}).on('close', () => { open.delete(s); client.destroy(); upstream.destroy() })
    }
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => { proxy.close(resolve); for (const s of open) s.destroy() }))
  return { port: (proxy.address() as AddressInfo).port, connections }
}

function storeOn (t: Test, settings: Partial<RedisStoreSettings>): { store: RedisStore, states: Array<StoreSnapshot['state']> } {
  const states: Array<StoreSnapshot['state']> = []
  const store = new RedisStore('ha', { name: 'mymaster', keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 1_000, ...settings }, { state (_s, state) { states.push(state) }, failed () {}, command () {} })
  t.teardown(() => store.close())
  return { store, states }
}

/** For until: whether one client is subscribed on the sentinel, connected to `address`, as of its last CLIENT LIST (one asked at a time). */
function watched (s: { cli (...args: string[]): Promise<string> }, address: string): () => boolean {
  let n = 0
  let asking = false
  return () => {
    if (!asking) {
      asking = true
      // The last one asked may outlive the test's sentinel.
      void s.cli('CLIENT', 'LIST').then(list => { n = list.split('\n').filter(c => c.includes(` laddr=${address} `) && c.includes(' sub=1 ')).length }, () => {}).finally(() => { asking = false })
    }
    return n === 1
  }
}

t.test('tls and sentinel credentials: the sentinels and a TLS-only primary, each with its own password', async t => {
  const s = await sentinel(t, await tlsPrimary(t), true)
  const { store } = storeOn(t, { sentinels: [s.tlsAddress], password: PRIMARY_PW, sentinelPassword: SENTINEL_PW, tls: { ca: ca.cert } })
  t.ok(await until(() => store.snapshot().state === 'up'), `up (${store.snapshot().lastError})`)
  t.equal(await store.run(counter, ['{tls}:n'], [0]), 1, 'a call answered by the primary, on its TLS port')
  // The +switch-master watcher: subscribed on the sentinel's TLS port, which it could only do with the password.
  t.ok(await until(watched(s, s.tlsAddress)), 'the failover watcher subscribed over TLS, authenticated')
})

t.test('tls set and a primary that speaks plain TCP only: never used in clear', async t => {
  // The store's password is its own (the sentinel's auth-pass goes to the primary too, in clear): whatever carries it is the store's.
  const password = 'store-pw'
  const server = await RedisProcess.start()
  t.teardown(() => server.stop())
  const seen = await recordingProxy(t, server.port)
  const s = await sentinel(t, seen.port, false)
  const { store, states } = storeOn(t, { sentinels: [s.tlsAddress], password, sentinelPassword: SENTINEL_PW, tls: { ca: ca.cert } })
  // The sentinel (over TLS) named the primary: the store offers it a TLS handshake (a record of type 22), which it cannot answer.
  t.ok(await until(() => seen.connections.some(c => c[0] === 0x16)), 'the store began a TLS handshake with the primary')
  t.notOk(seen.connections.some(c => c.includes(password)), 'the password never went in clear')
  t.notOk(states.includes('up'), 'never up')
  await t.rejects(store.get('k'), 'calls fail')
})

t.test('sentinels that require a password, without TLS: the store and its watcher authenticate', async t => {
  const primary = await RedisProcess.start(['--requirepass', PRIMARY_PW])
  t.teardown(() => primary.stop())
  const s = await sentinel(t, primary.port, false)
  const { store } = storeOn(t, { sentinels: [s.server.address], password: PRIMARY_PW, sentinelPassword: SENTINEL_PW })
  t.ok(await until(() => store.snapshot().state === 'up'), `up (${store.snapshot().lastError})`)
  t.equal(await store.run(counter, ['{pw}:n'], [0]), 1)
  t.ok(await until(watched(s, s.server.address)), 'the failover watcher subscribed')
})
