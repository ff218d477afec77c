import t from 'tap'
import { timersSetBy } from '../../test/helpers/timers.ts'
import { TokenCache } from './token-cache.ts'

// The cache alone. Entries expire on the wall clock (the token's exp, as jose reads it), which
// the tests move by replacing Date.now.

const realNow = Date.now
t.afterEach(() => { Date.now = realNow })
/** Date.now() returns `ms` until the test ends. */
const clockAt = (ms: number) => { Date.now = () => ms }

const T0 = 1_800_000_000_000 // an instant in 2027, in ms
const verified = (id: string) => ({ consumer: { id, groups: [], metadata: {} } })

t.test('keyed by the SHA-256 of the token, in base64', async t => {
  t.equal(TokenCache.key('abc'), 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=', 'FIPS 180-2 test vector for "abc"')
})

t.test('an entry is served until its exp, not at it', async t => {
  clockAt(T0)
  const cache = new TokenCache(10)
  const v = verified('alice')
  cache.set('k', v, T0 / 1000 + 60, 0)
  t.equal(cache.get('k', 0), v, 'the same verification')
  t.equal(cache.get('other', 0), undefined, 'another key')
  clockAt(T0 + 59_999)
  t.equal(cache.get('k', 0), v, 'a millisecond before exp')
  clockAt(T0 + 60_000)
  t.equal(cache.get('k', 0), undefined, 'at exp: expired (RFC 7519 4.1.4: the time must be before exp)')
  clockAt(T0)
  t.equal(cache.get('k', 0), undefined, 'and dropped, not only skipped')
})

t.test('the wall clock decides, even when it jumps ahead of the monotonic clock', async t => {
  clockAt(T0)
  const cache = new TokenCache(10)
  cache.set('k', verified('alice'), T0 / 1000 + 3600, 0)
  clockAt(T0 + 7_200_000)
  t.equal(cache.get('k', 0), undefined, 'two hours later on the wall clock, an instant later on the monotonic one')
})

t.test('an entry from another key set generation is not used, and is dropped', async t => {
  clockAt(T0)
  const cache = new TokenCache(10)
  const v = verified('alice')
  cache.set('k', v, T0 / 1000 + 60, 3)
  t.equal(cache.get('k', 3), v)
  t.equal(cache.get('k', 4), undefined, 'a key was removed since: verify again')
  t.equal(cache.get('k', 3), undefined, 'dropped, not only skipped')
})

t.test('a token already expired (or expiring this millisecond) is not kept, and takes no room', async t => {
  clockAt(T0)
  const cache = new TokenCache(2)
  const a = verified('a')
  const b = verified('b')
  cache.set('a', a, T0 / 1000 + 60, 0)
  cache.set('b', b, T0 / 1000 + 60, 0)
  cache.set('past', verified('past'), T0 / 1000 - 1, 0)
  cache.set('now', verified('now'), T0 / 1000, 0)
  t.equal(cache.get('past', 0), undefined)
  t.equal(cache.get('now', 0), undefined)
  t.equal(cache.get('a', 0), a, 'the two live entries are both still there')
  t.equal(cache.get('b', 0), b)
})

t.test('bounded: the least recently used entry goes first', async t => {
  clockAt(T0)
  const cache = new TokenCache(2)
  const exp = T0 / 1000 + 60
  cache.set('a', verified('a'), exp, 0)
  cache.set('b', verified('b'), exp, 0)
  cache.get('a', 0)
  cache.set('c', verified('c'), exp, 0)
  t.same([cache.get('a', 0)?.consumer?.id, cache.get('b', 0)?.consumer?.id, cache.get('c', 0)?.consumer?.id], ['a', undefined, 'c'])
})

t.test('a lookup sets no timer (one is on every request with a token)', async t => {
  const cache = new TokenCache(10)
  const v = verified('alice')
  cache.set('k', v, Date.now() / 1000 + 60, 0)
  t.equal(await timersSetBy(() => t.equal(cache.get('k', 0), v)), 0)
})
