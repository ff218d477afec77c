import t from 'tap'
import { redisKeySpace } from '../../src/stores/key-space.ts'
import type { RedisStoreSettings } from '../../src/stores/redis-store.ts'

const base: RedisStoreSettings = { url: 'redis://10.0.0.1:6379', keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 100 }
const space = (s: Partial<RedisStoreSettings>) => redisKeySpace({ ...base, ...s })

t.test('the same keys whatever the timeouts, credentials and TLS', async t => {
  const same = space({})
  t.equal(space({ commandTimeout: 50, connectTimeout: 1_000 }), same)
  t.equal(space({ username: 'u', password: 'p', tls: true }), same)
  t.equal(space({ url: 'redis://u:secret@10.0.0.1:6379?password=other' }), same)
  t.notMatch(space({ url: 'redis://u:secret@10.0.0.1:6379' }), /secret/, 'no credentials held')
})

t.test('other keys: another server, database or keyPrefix', async t => {
  const same = space({})
  for (const other of [
    { url: 'redis://10.0.0.2:6379' }, { url: 'redis://10.0.0.1:6380' }, { url: 'redis://10.0.0.1:6379/2' },
    { url: 'redis://10.0.0.1:6379?db=2' }, { db: 2 }, { keyPrefix: 'v2:' }
  ]) t.not(space(other), same, JSON.stringify(other))
})

t.test('sentinels by their primary and addresses (in any order), a cluster by its nodes (in any order)', async t => {
  const sentinels = space({ url: undefined, sentinels: ['a:1', 'b:1'], name: 'p' })
  t.equal(space({ url: undefined, sentinels: ['b:1', 'a:1'], name: 'p' }), sentinels)
  t.not(space({ url: undefined, sentinels: ['a:1', 'b:1'], name: 'q' }), sentinels)
  const cluster = space({ url: undefined, cluster: ['a:1', 'b:1'] })
  t.equal(space({ url: undefined, cluster: ['b:1', 'a:1'] }), cluster)
  t.not(space({ url: undefined, cluster: ['a:1', 'c:1'] }), cluster)
})
