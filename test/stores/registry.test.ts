import t from 'tap'
import { StoreRegistry, type StoreConfigs } from '../../src/stores/registry.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { eventually } from './store-cases.ts'

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

/** How many clients are connected to the server, redis-cli's own excepted. */
const clients = async () => (await redis.cli('CLIENT', 'LIST')).split('\n').filter(l => !l.includes('cmd=client')).length

t.test('a config whose later store cannot be created gives back the stores it had already created', async t => {
  const registry = new StoreRegistry(memoryLogger().log)
  const kept = registry.acquire({})
  // Past validation (as a bypassed or older check would let through): the URL only fails in ioredis.
  const configs = { r1: { type: 'redis', url: redis.url }, r4: { type: 'redis', url: 'redis://:pa#ss@127.0.0.1:99999' } } as unknown as StoreConfigs
  for (let i = 0; i < 5; i++) {
    const err = t.throws(() => registry.acquire(configs)) as Error
    t.equal(err.message, 'store "r4": its Redis client could not be created: Invalid URL')
    t.notMatch(JSON.stringify({ ...err }), /pa#ss/, 'nothing logged with the error holds the password')
  }
  t.same(registry.snapshot().map(s => s.name), ['memory'], 'what GET /stores shows: r1 is gone')
  t.equal(await eventually(clients, 0), 0, 'CLIENT LIST: every connection r1 opened is closed')
  t.ok(kept.get('memory'), 'the stores of the running config are untouched')
  await kept.release()
})
