import t from 'tap'
import { redisForTest } from '../../test/helpers/redis.ts'
import { rateLimitCases } from '../../test/helpers/rate-limit-cases.ts'

// The same behaviour as on the memory store, through the Lua script on a real redis-server
// (commandTimeout 2s: the default 100 ms let requests through, onStoreError: allow, on a loaded machine).
const redis = await redisForTest()
t.teardown(() => redis.close())
let n = 0
rateLimitCases(t, () => ({ stores: `stores:\n  shared: { type: redis, url: "${redis.url}", keyPrefix: "cases${++n}:", commandTimeout: 2s }`, name: 'shared' }))
