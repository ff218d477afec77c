import t from 'tap'
import { RedisStore, type RedisStoreEvents, type RedisStoreSettings } from '../../src/stores/redis-store.ts'
import { freePort } from '../helpers/ports.ts'
import { RedisProcess } from '../helpers/redis.ts'

// What settled() tells of a first connection attempt: a server that answers and refuses the
// credentials (a config error, see StoreLease.settled), or none (up, or an outage).

const PW = 'right-pw'
const quiet: RedisStoreEvents = { state () {}, failed () {}, command () {} }
const BASE = { keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 500 } as const

const redis = await RedisProcess.start(['--requirepass', PW])
t.teardown(() => redis.stop())
const cli = (...args: string[]) => redis.cli('--no-auth-warning', '-a', PW, ...args)
// A user that may call GET and SET, not the ready check's INFO.
t.equal(await cli('ACL', 'SETUSER', 'narrow', 'on', '>narrow-pw', '~*', '+get', '+set'), 'OK')

/** A store of `settings`, closed with the test: what its first attempt ended in, and its state then. */
async function firstAttempt (settings: Partial<RedisStoreSettings>) {
  const store = new RedisStore('s', { ...BASE, ...settings }, quiet)
  t.teardown(() => store.close())
  const refused = await store.settled()
  return { refused, state: store.snapshot().state }
}

t.test('a wrong password: WRONGPASS, the store down', async t => {
  const { refused, state } = await firstAttempt({ url: redis.url, password: 'wrong-pw' })
  t.match(refused, { reply: /^WRONGPASS /, sentinel: undefined })
  t.notMatch(JSON.stringify(refused), /wrong-pw/, 'the password is not quoted')
  t.equal(state, 'down')
})

t.test('a wrong username, in the URL: WRONGPASS', async t => {
  const { refused } = await firstAttempt({ url: `redis://nobody:${PW}@127.0.0.1:${redis.port}` })
  t.match(refused, { reply: /^WRONGPASS / })
})

t.test('no password, to a server that requires one: NOAUTH', async t => {
  const { refused, state } = await firstAttempt({ url: redis.url })
  t.match(refused, { reply: /^NOAUTH / })
  t.equal(state, 'down')
})

t.test('a user denied the ready check\'s INFO (NOPERM) is no refusal: ioredis skips the check, up', async t => {
  t.same(await firstAttempt({ url: redis.url, username: 'narrow', password: 'narrow-pw' }), { refused: undefined, state: 'up' })
})

t.test('the right password: up, nothing refused', async t => {
  t.same(await firstAttempt({ url: redis.url, password: PW }), { refused: undefined, state: 'up' })
})

t.test('a password to a server that requires none is no refusal: up (ioredis goes on without it)', async t => {
  const open = await RedisProcess.start()
  t.teardown(() => open.stop())
  t.same(await firstAttempt({ url: open.url, password: 'needless-pw' }), { refused: undefined, state: 'up' })
})

t.test('nothing listening: an outage, not a refusal', async t => {
  t.same(await firstAttempt({ url: `redis://127.0.0.1:${await freePort()}`, password: 'wrong-pw' }), { refused: undefined, state: 'down' })
})

t.test('Sentinel: a sentinel refusing sentinelPassword, named; the primary refusing password', async t => {
  const primary = await RedisProcess.start(['--requirepass', PW])
  t.teardown(() => primary.stop())
  const sentinel = await RedisProcess.start(['--sentinel', '--requirepass', 'sentinel-pw'], `sentinel monitor guarded 127.0.0.1 ${primary.port} 1\nsentinel auth-pass guarded ${PW}\n`)
  t.teardown(() => sentinel.stop())
  const ha = { sentinels: [sentinel.address], name: 'guarded' }
  const bySentinel = await firstAttempt({ ...ha, password: PW, sentinelPassword: 'wrong-pw' })
  t.match(bySentinel, { refused: { sentinel: sentinel.address, reply: /^WRONGPASS / }, state: 'down' })
  t.match(await firstAttempt({ ...ha, password: PW }), { refused: { sentinel: sentinel.address, reply: /^NOAUTH / } }, 'no sentinelPassword: NOAUTH')
  t.match(await firstAttempt({ ...ha, password: 'wrong-pw', sentinelPassword: 'sentinel-pw' }), { refused: { sentinel: undefined, reply: /^WRONGPASS / }, state: 'down' }, 'the primary\'s refusal')
  t.same(await firstAttempt({ ...ha, password: PW, sentinelPassword: 'sentinel-pw' }), { refused: undefined, state: 'up' })
})

t.test('Cluster: a seed refusing the password', async t => {
  // One node holding every slot; announcing its address, which CLUSTER SLOTS otherwise leaves empty.
  const node = await RedisProcess.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-announce-ip', '127.0.0.1', '--requirepass', PW])
  t.teardown(() => node.stop())
  const nodeCli = (...args: string[]) => node.cli('--no-auth-warning', '-a', PW, ...args)
  t.equal(await nodeCli('CLUSTER', 'ADDSLOTSRANGE', '0', '16383'), 'OK')
  for (let i = 0; i < 200 && !(await nodeCli('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) await new Promise(resolve => setTimeout(resolve, 25))
  t.match(await firstAttempt({ cluster: [node.address], password: 'wrong-pw' }), { refused: { reply: /^WRONGPASS / }, state: 'down' })
  t.same(await firstAttempt({ cluster: [node.address], password: PW }), { refused: undefined, state: 'up' })
})
