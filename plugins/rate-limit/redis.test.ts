import t from 'tap'
import { redisForTest } from '../../test/helpers/redis.ts'
import { rateLimitCases } from '../../test/helpers/rate-limit-cases.ts'

// The same behaviour as on the memory store, through the Lua script on a real redis-server.
const redis = await redisForTest()
t.teardown(() => redis.close())
let n = 0
rateLimitCases(t, () => ({ stores: `stores:\n  shared: { type: redis, url: "${redis.url}", keyPrefix: "cases${++n}:" }`, name: 'shared' }))
