import type { Test } from 'tap'
import { defineScript, type Store } from '../../src/index.ts'

/**
 * The store API's semantics, written once and run against every kind of store (memory, Redis
 * standalone, Cluster, Sentinel): both must give the same answers. Each case uses its own keys
 * (under `ns`), so the cases can share one store.
 */

/** A rate-limit-like counter: INCR, with a TTL (ARGV[1] ms, 0 none) set by the first hit. Returns the count. */
export const counter = defineScript<number>({
  name: 'test-counter',
  lua: `local n = redis.call('INCR', KEYS[1])
if n == 1 and tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`,
  local (data, keys, args) {
    const key = keys[0] as string
    const n = Number(data.get(key) ?? 0) + 1
    data.set(key, n, n === 1 ? Number(args[0]) : undefined)
    return n
  }
})

/** Swaps two keys; returns what it read ('' when absent) and 2, an array as Redis gives it. */
export const swap = defineScript<Array<string | number>>({
  name: 'test-swap',
  lua: `local a = redis.call('GET', KEYS[1])
local b = redis.call('GET', KEYS[2])
if b then redis.call('SET', KEYS[1], b) else redis.call('DEL', KEYS[1]) end
if a then redis.call('SET', KEYS[2], a) else redis.call('DEL', KEYS[2]) end
return { a or '', b or '', 2 }`,
  local (data, keys) {
    const [k1, k2] = keys as [string, string]
    const a = data.get(k1)
    const b = data.get(k2)
    if (b === undefined) data.delete(k1); else data.set(k1, b)
    if (a === undefined) data.delete(k2); else data.set(k2, a)
    return [a === undefined ? '' : String(a), b === undefined ? '' : String(b), 2]
  }
})

/** Writes ARGV[1] with a TTL of ARGV[2] ms, as a script may rewrite a key set by set(). */
const put = defineScript<number>({
  name: 'test-put',
  lua: "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
  local (data, keys, args) {
    data.set(keys[0] as string, args[0] as string, Number(args[1]))
    return 1
  }
})

/** A key's value as a script reads it: nothing (Lua nil) when absent. */
const read = defineScript<string | undefined>({
  name: 'test-read',
  lua: "return redis.call('GET', KEYS[1])",
  local (data, keys) {
    const v = data.get(keys[0] as string)
    return v === undefined ? undefined : String(v)
  }
})

/** Fails with its own error. */
const failing = defineScript<never>({
  name: 'test-failing',
  lua: "return redis.error_reply('refused by the script')",
  local () { throw new Error('refused by the script') }
})

const text = async (store: Store, key: string): Promise<string | undefined> => (await store.get(key))?.toString()

/** Polls `read` until it gives `want`, for at most `maxMs`; the last value read. */
export async function eventually<T> (read: () => Promise<T>, want: T, maxMs = 3_000): Promise<T> {
  let v = await read()
  for (const start = performance.now(); v !== want && performance.now() - start < maxMs;) {
    await new Promise(resolve => setTimeout(resolve, 10))
    v = await read()
  }
  return v
}

type Case = (t: Test, store: Store, ns: string) => Promise<void>

const STORE_CASES: Record<string, Case> = {
  'get of a missing key is undefined; set then get gives a Buffer': async (t, store, ns) => {
    t.equal(await store.get(`${ns}nope`), undefined)
    await store.set(`${ns}a`, 'hello')
    const got = await store.get(`${ns}a`)
    t.ok(Buffer.isBuffer(got), 'reads give Buffers')
    t.equal(got?.toString(), 'hello')
    await store.set(`${ns}a`, 'again')
    t.equal(await text(store, `${ns}a`), 'again', 'set overwrites')
  },

  'binary values round-trip unchanged': async (t, store, ns) => {
    const bytes = Buffer.from([0, 255, 1, 254, 0x0a, 0x0d, 0x80])
    await store.set(`${ns}bin`, bytes)
    t.same([...(await store.get(`${ns}bin`)) ?? []], [0, 255, 1, 254, 0x0a, 0x0d, 0x80])
  },

  'a key with a TTL expires; one without stays; set without TTL removes the TTL': async (t, store, ns) => {
    // TTLs long enough for the calls before the first read, even on a busy machine; `cleared` would
    // expire before `short`, had its TTL been kept.
    await store.set(`${ns}short`, 'x', { ttlMs: 1_000 })
    await store.set(`${ns}kept`, 'y')
    await store.set(`${ns}cleared`, 'z', { ttlMs: 500 })
    await store.set(`${ns}cleared`, 'z2')
    t.equal(await text(store, `${ns}short`), 'x', 'there before its TTL')
    t.equal(await eventually(() => text(store, `${ns}short`), undefined), undefined, 'gone after its TTL')
    t.equal(await text(store, `${ns}kept`), 'y', 'no TTL: still there')
    t.equal(await text(store, `${ns}cleared`), 'z2', 'overwritten without a TTL: no longer expires')
  },

  'ttlMs 0 means no expiry': async (t, store, ns) => {
    await store.set(`${ns}zero`, 'v', { ttlMs: 0 })
    await store.set(`${ns}probe`, 'p', { ttlMs: 50 })
    await eventually(() => text(store, `${ns}probe`), undefined)
    t.equal(await text(store, `${ns}zero`), 'v')
  },

  'a TTL is rounded up to a whole ms, at most MAX_SAFE_INTEGER; Infinity or NaN mean no expiry': async (t, store, ns) => {
    await store.set(`${ns}tiny`, 'a', { ttlMs: 0.4 })
    await store.set(`${ns}frac`, 'b', { ttlMs: 1.5 })
    for (const [i, ttlMs] of [Infinity, -0, Number.NaN].entries()) await store.set(`${ns}forever-${i}`, 'c', { ttlMs })
    // Beyond it: the longest (on Redis, see redis-store.test.ts), not none.
    for (const [i, ttlMs] of [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 1e19].entries()) await store.set(`${ns}far-${i}`, 'd', { ttlMs })
    t.equal(await eventually(() => text(store, `${ns}tiny`), undefined), undefined, '0.4 ms: 1 ms, expired')
    t.equal(await eventually(() => text(store, `${ns}frac`), undefined), undefined, '1.5 ms: 2 ms, expired')
    t.same(await Promise.all([0, 1, 2].map(i => text(store, `${ns}forever-${i}`))), ['c', 'c', 'c'], 'no expiry')
    t.same(await Promise.all([0, 1, 2].map(i => text(store, `${ns}far-${i}`))), ['d', 'd', 'd'], 'the longest TTL there is')
  },

  'a negative TTL (expired already) deletes the key and its tags, never keeps it without expiry': async (t, store, ns) => {
    await store.set(`${ns}old`, 'v', { tags: [`${ns}tag-n`] })
    await store.set(`${ns}old`, 'w', { ttlMs: -5, tags: [`${ns}tag-n`] })
    await store.set(`${ns}new`, 'x', { ttlMs: -0.5 })
    await store.set(`${ns}ever`, 'y', { ttlMs: -Infinity })
    t.same(await Promise.all(['old', 'new', 'ever'].map(k => store.get(`${ns}${k}`))), [undefined, undefined, undefined])
    t.equal(await store.deleteTag(`${ns}tag-n`), 0, 'nothing left to delete by its tag')
  },

  'extendOnly: the TTL only extends, its tags follow the TTL kept; a key without one gets it': async (t, store, ns) => {
    await store.set(`${ns}long`, 'a', { ttlMs: 60_000, tags: [`${ns}tag-e`] })
    await store.set(`${ns}long`, 'b', { ttlMs: 50, tags: [`${ns}tag-e`], extendOnly: true })
    await store.set(`${ns}short`, 'c', { ttlMs: 50 })
    await store.set(`${ns}short`, 'd', { ttlMs: 60_000, extendOnly: true })
    await store.set(`${ns}none`, 'e')
    await store.set(`${ns}none`, 'f', { ttlMs: 50, extendOnly: true })
    await store.set(`${ns}new`, 'g', { ttlMs: 50, extendOnly: true })
    t.equal(await eventually(() => text(store, `${ns}new`), undefined), undefined, 'a new key gets the TTL given')
    t.equal(await eventually(() => text(store, `${ns}none`), undefined), undefined, 'so does one without expiry: never kept for ever')
    t.same(await Promise.all(['long', 'short'].map(k => text(store, `${ns}${k}`))), ['b', 'd'], 'the others are there, with their new values')
    // Another key set with the tag after the 50 ms: `long` is still deleted by it (its tag outlived the 50 ms too).
    await store.set(`${ns}other`, 'h', { ttlMs: 60_000, tags: [`${ns}tag-e`] })
    t.equal(await store.deleteTag(`${ns}tag-e`), 2, 'long and other')
  },

  'delete removes keys and counts those that existed': async (t, store, ns) => {
    await store.set(`${ns}d1`, '1')
    await store.set(`${ns}d2`, '2')
    await store.set(`${ns}d3`, '3')
    t.equal(await store.delete(`${ns}d1`, `${ns}d2`, `${ns}missing`), 2)
    t.equal(await store.get(`${ns}d1`), undefined)
    t.equal(await store.get(`${ns}d2`), undefined)
    t.equal(await text(store, `${ns}d3`), '3', 'the others are kept')
    t.equal(await store.delete(`${ns}d1`), 0, 'deleting again finds nothing')
  },

  'deletePrefix removes every key under the prefix, and only those': async (t, store, ns) => {
    for (let i = 0; i < 30; i++) await store.set(`${ns}p:/a/${i}`, String(i))
    await store.set(`${ns}p:/b/1`, 'b')
    await store.set(`${ns}p:/a`, 'exact prefix, no slash')
    t.equal(await store.deletePrefix(`${ns}p:/a/`), 30)
    t.equal(await store.get(`${ns}p:/a/0`), undefined)
    t.equal(await store.get(`${ns}p:/a/29`), undefined)
    t.equal(await text(store, `${ns}p:/b/1`), 'b')
    t.equal(await text(store, `${ns}p:/a`), 'exact prefix, no slash')
    t.equal(await store.deletePrefix(`${ns}p:/a/`), 0, 'nothing left under it')
  },

  'deletePrefix takes glob characters literally': async (t, store, ns) => {
    await store.set(`${ns}g*[x]?\\1`, 'literal')
    await store.set(`${ns}gZ[x]?\\1`, 'other')
    await store.set(`${ns}g*x`, 'other too')
    t.equal(await store.deletePrefix(`${ns}g*[x]?\\`), 1)
    t.equal(await store.get(`${ns}g*[x]?\\1`), undefined)
    t.equal(await text(store, `${ns}gZ[x]?\\1`), 'other')
    t.equal(await text(store, `${ns}g*x`), 'other too')
  },

  'deleteTag removes the keys set with the tag, and only those': async (t, store, ns) => {
    await store.set(`${ns}t1`, '1', { tags: [`${ns}product-7`, `${ns}all`] })
    await store.set(`${ns}t2`, '2', { tags: [`${ns}product-7`], ttlMs: 60_000 })
    await store.set(`${ns}t3`, '3', { tags: [`${ns}product-8`, `${ns}all`] })
    await store.set(`${ns}t4`, '4')
    t.equal(await store.deleteTag(`${ns}product-7`), 2)
    t.equal(await store.get(`${ns}t1`), undefined)
    t.equal(await store.get(`${ns}t2`), undefined)
    t.equal(await text(store, `${ns}t3`), '3')
    t.equal(await text(store, `${ns}t4`), '4')
    t.equal(await store.deleteTag(`${ns}product-7`), 0, 'the tag is empty now')
    t.equal(await store.deleteTag(`${ns}all`), 1, 't3 (t1 is already gone)')
    t.equal(await store.deleteTag(`${ns}never-used`), 0)
  },

  'a key deleted, expired or re-set without its tag is no longer deleted by it': async (t, store, ns) => {
    await store.set(`${ns}r1`, 'old', { tags: [`${ns}tag-r`] })
    await store.set(`${ns}r1`, 'new')
    await store.set(`${ns}r2`, 'old', { tags: [`${ns}tag-r`] })
    await store.delete(`${ns}r2`)
    await store.set(`${ns}r2`, 'new')
    await store.set(`${ns}r3`, 'old', { tags: [`${ns}tag-r`], ttlMs: 50 })
    await eventually(() => text(store, `${ns}r3`), undefined)
    await store.set(`${ns}r3`, 'new')
    await store.set(`${ns}r4`, 'old', { tags: [`${ns}tag-r`] })
    await store.set(`${ns}r4`, 'new', { tags: [`${ns}tag-other`] })
    await store.set(`${ns}r5`, 'kept', { tags: [`${ns}tag-r`] })
    t.equal(await store.deleteTag(`${ns}tag-r`), 1, 'only r5 still carries the tag')
    t.same(await Promise.all(['r1', 'r2', 'r3', 'r4'].map(k => text(store, `${ns}${k}`))), ['new', 'new', 'new', 'new'])
    t.equal(await store.get(`${ns}r5`), undefined)
    t.equal(await store.deleteTag(`${ns}tag-other`), 1, 'r4 carries its new tag')
  },

  'a script runs atomically and its writes are seen by get (same keys)': async (t, store, ns) => {
    const key = `${ns}{client-1}:hits`
    const counts = await Promise.all(Array.from({ length: 20 }, () => store.run(counter, [key], [60_000])))
    t.same(counts.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), 'each call saw its own count')
    t.equal(await text(store, key), '20', 'get reads what the script wrote')
    t.equal(await store.delete(key), 1)
    t.equal(await store.run(counter, [key], [60_000]), 1, 'counting starts again after delete')
  },

  'a TTL set by a script expires the key': async (t, store, ns) => {
    const key = `${ns}{client-2}:hits`
    // A window long enough for the second call to fall inside it, even on a busy machine.
    t.equal(await store.run(counter, [key], [500]), 1)
    t.equal(await store.run(counter, [key], [500]), 2)
    t.equal(await eventually(() => text(store, key), undefined), undefined, 'expired')
    t.equal(await store.run(counter, [key], [500]), 1, 'a new window')
  },

  "a script's write keeps the key's TTL and tags (as INCR does)": async (t, store, ns) => {
    const key = `${ns}{client-3}:hits`
    await store.set(key, '5', { ttlMs: 500, tags: [`${ns}tag-s`] })
    t.equal(await store.run(counter, [key], [60_000]), 6)
    t.equal(await eventually(() => text(store, key), undefined), undefined, 'expired on the TTL set() gave it')
    await store.set(key, '5', { tags: [`${ns}tag-s`] })
    t.equal(await store.run(counter, [key], [60_000]), 6)
    t.equal(await store.deleteTag(`${ns}tag-s`), 1, 'still tagged')
    t.equal(await store.run(counter, [`${ns}{client-3}:fresh`], [0]), 1, 'a new key without TTL')
    await store.set(`${ns}probe`, 'p', { ttlMs: 50 })
    await eventually(() => text(store, `${ns}probe`), undefined)
    t.equal(await text(store, `${ns}{client-3}:fresh`), '1', 'does not expire')
  },

  "a script's write with a TTL keeps the key's tags": async (t, store, ns) => {
    await store.set(`${ns}tagged`, 'v', { tags: [`${ns}tag-p`] })
    t.equal(await store.run(put, [`${ns}tagged`], ['w', 60_000]), 1)
    t.equal(await text(store, `${ns}tagged`), 'w')
    t.equal(await store.deleteTag(`${ns}tag-p`), 1, 'still deleted by its tag')
    t.equal(await store.get(`${ns}tagged`), undefined)
  },

  'a script returning nil gives undefined, as get() of a missing key': async (t, store, ns) => {
    t.equal(await store.run(read, [`${ns}{nil}:missing`], []), undefined)
    await store.set(`${ns}{nil}:there`, 'here')
    t.equal(await store.run(read, [`${ns}{nil}:there`], []), 'here')
  },

  "a script's error fails its call with code STORE_SCRIPT_ERROR, the script's message and its cause": async (t, store, ns) => {
    const err = await store.run(failing, [`${ns}x`], []).then(() => undefined, (e: unknown) => e)
    t.match(err, { name: 'StoreError', code: 'STORE_SCRIPT_ERROR', message: 'refused by the script', cause: Error })
    t.equal(await store.run(counter, [`${ns}{e}:n`], [0]), 1, 'the store still answers')
  },

  'a second script under the name of another is refused, on every store alike': async (t, store, ns) => {
    const first = defineScript<number>({ name: 'test-named-twice', lua: 'return 1', local: () => 1 })
    t.equal(await store.run(first, [`${ns}k`], []), 1)
    await t.rejects(store.run({ ...first, lua: 'return 2', local: () => 2 }, [`${ns}k`], []), { code: 'STORE_SCRIPT_ERROR', message: 'two different scripts are named "test-named-twice"' })
    t.equal(await store.run({ ...first }, [`${ns}k`], []), 1, 'the same script again (another object) is fine')
  },

  'a script with two keys returns an array and sees values set by set()': async (t, store, ns) => {
    const a = `${ns}{pair}:a`
    const b = `${ns}{pair}:b`
    await store.set(a, 'left')
    t.same(await store.run(swap, [a, b], []), ['left', '', 2])
    t.equal(await store.get(a), undefined)
    t.equal(await text(store, b), 'left')
  }
}

/** Runs every case as a subtest of `t` against `store`, keys under `ns`. */
export function storeCases (t: Test, store: () => Store, ns: string): void {
  for (const [name, run] of Object.entries(STORE_CASES)) t.test(name, t => run(t, store(), `${ns}${Object.keys(STORE_CASES).indexOf(name)}:`))
}
