import t from 'tap'
import { MemoryStore } from '../../src/stores/memory-store.ts'
import { defineScript } from '../../src/stores/store.ts'
import { timersSetBy } from '../helpers/timers.ts'
import { counter, eventually, storeCases } from './store-cases.ts'

const text = async (store: MemoryStore, key: string) => (await store.get(key))?.toString()

t.test('the shared store cases', async t => {
  const store = new MemoryStore('memory')
  t.teardown(() => store.close())
  storeCases(t, () => store, 'm:')
})

t.test('getNow reads without a promise: the same value as get, and it counts as a use', async t => {
  const store = new MemoryStore('now', { maxEntries: 2, maxBytes: 1024 * 1024 })
  await store.set('a', 'one')
  await store.set('b', Buffer.from('two'))
  t.equal(store.getNow('a')?.toString(), 'one', 'a string value, as a Buffer')
  t.equal(store.getNow('b')?.toString(), 'two')
  t.equal(store.getNow('missing'), undefined)
  t.equal(store.getNow('b'), await store.get('b'), 'a stored Buffer is handed back as is, by both')
  store.getNow('a') // a is now more recently used than b
  await store.set('c', '3')
  t.equal(store.getNow('b'), undefined, 'b, the least recently used, was evicted')
  t.equal(store.getNow('a')?.toString(), 'one')
})

t.test('maxEntries: the least recently used entry goes first', async t => {
  const store = new MemoryStore('small', { maxEntries: 3, maxBytes: 1024 * 1024 })
  await store.set('a', '1')
  await store.set('b', '2')
  await store.set('c', '3')
  await store.get('a') // a is now more recently used than b
  await store.set('d', '4')
  t.equal(await store.get('b'), undefined, 'b, the least recently used, was evicted')
  t.same(await Promise.all(['a', 'c', 'd'].map(k => text(store, k))), ['1', '3', '4'])
  t.equal(store.snapshot().entries, 3)
  // Reading a, c, d (in that order) made a the least recently used.
  await store.run(counter, ['e'], [0])
  t.equal(await text(store, 'a'), '1', 'a key a script creates lives apart: it evicts no value')
  t.equal(store.snapshot().entries, 4)
  await store.run(counter, ['a'], [0])
  t.equal(await text(store, 'a'), '2', 'a script writing a value set() made leaves it where it is')
  await store.set('e', 'set')
  t.equal(await text(store, 'e'), 'set')
  t.equal(store.snapshot().entries, 3, 'set() moved the script\'s key to the values, which hold 3')
})

t.test('a flood of values never evicts what scripts keep: a rate limit cannot be reset by filling the cache', async t => {
  const store = new MemoryStore('apart', { maxEntries: 100, maxBytes: 64 * 1024 })
  t.equal(await store.run(counter, ['rl:client'], [60_000]), 1)
  t.equal(await store.run(counter, ['rl:client'], [60_000]), 2)
  for (let i = 0; i < 300; i++) await store.set(`cache:${i}`, Buffer.alloc(1000))
  t.equal(await store.get('cache:0'), undefined, 'the values were evicted among themselves')
  t.equal(await store.run(counter, ['rl:client'], [60_000]), 3, 'the counter counted on')
  t.ok((store.snapshot().bytes ?? Infinity) <= 2 * 64 * 1024, 'each part within maxBytes')
  t.equal(await store.deletePrefix('rl:'), 1, 'deletePrefix reaches both parts')
  t.equal(await store.run(counter, ['rl:client'], [60_000]), 1)
})

t.test('maxBytes: values and keys are counted; an entry too big is not kept', async t => {
  // Each entry: 64 bytes of overhead + 1 byte of key + 400 bytes of value = 465; two fit in 1024.
  const store = new MemoryStore('bytes', { maxEntries: 1000, maxBytes: 1024 })
  const value = 'x'.repeat(400)
  await store.set('a', value)
  await store.set('b', value)
  t.equal(store.snapshot().bytes, 930)
  await store.set('c', value)
  t.equal(await store.get('a'), undefined, 'a was evicted to make room')
  t.equal(await text(store, 'b'), value)
  t.equal(await text(store, 'c'), value)
  t.equal(store.snapshot().bytes, 930)
  await store.set('b', 'y'.repeat(2000))
  t.equal(await store.get('b'), undefined, 'a value bigger than maxBytes is not stored, and the old one is gone')
  t.equal(await text(store, 'c'), value, 'the others are untouched')
  t.equal(store.snapshot().bytes, 465)
})

t.test('reading an entry with a TTL sets no timer (a read is on every request of a limited or cached route)', async t => {
  const store = new MemoryStore('clock')
  t.teardown(() => store.close())
  await store.set('k', 'v', { ttlMs: 60_000 })
  t.equal(await timersSetBy(turn => {
    t.equal(store.getNow('k')?.toString(), 'v')
    t.equal(store.runNow(counter, ['n'], ['60000']), turn + 1, 'a script reads and writes its key, keeping its TTL')
  }), 0)
})

t.test('tags of evicted and expired entries are cleaned up', async t => {
  const store = new MemoryStore('tags', { maxEntries: 2, maxBytes: 1024 * 1024 })
  await store.set('a', '1', { tags: ['t1', 'shared'] })
  await store.set('b', '2', { tags: ['t2', 'shared'] })
  t.equal(store.snapshot().tags, 3)
  await store.set('c', '3')
  t.equal(store.snapshot().tags, 2, 'a was evicted: t1 is gone, shared names only b')
  t.equal(await store.deleteTag('shared'), 1)
  t.equal(store.snapshot().tags, 0, 'deleting b dropped its tags')
  await store.set('d', '4', { tags: ['t4'], ttlMs: 50 })
  t.equal(await eventually(() => text(store, 'd'), undefined), undefined)
  t.equal(store.snapshot().tags, 0, 'an entry found expired drops its tags')
  await store.set('e', '5', { tags: ['t5'] })
  await store.set('e', '6', { tags: ['t6'] })
  t.equal(store.snapshot().tags, 1, 're-set with other tags: only the new tag')
  t.equal(await store.deleteTag('t5'), 0)
  t.equal(await store.deleteTag('t6'), 1)
})

t.test('maxBytes counts tags: entries with many tags are evicted to keep the store, tag index included, within it', async t => {
  // A Surrogate-Key can list hundreds of tags, each kept in the tag index as long as its entry.
  const store = new MemoryStore('tag-bytes', { maxEntries: 10_000, maxBytes: 64 * 1024 })
  const tags = (i: number) => Array.from({ length: 100 }, (_, j) => `s:key-${String(i).padStart(3, '0')}-${String(j).padStart(3, '0')}`)
  for (let i = 0; i < 200; i++) await store.set(`k${String(i).padStart(3, '0')}`, 'x'.repeat(100), { tags: tags(i) })
  // 64 + 4 (key) + 100 (value), and per tag 128 + its 13 characters: 14,268 bytes an entry.
  const entry = 64 + 4 + 100 + 100 * (128 + 13)
  const { entries, bytes, tags: indexed } = store.snapshot()
  t.equal(entries, Math.floor(64 * 1024 / entry), 'as many entries as their tags leave room for')
  t.equal(bytes, (entries ?? 0) * entry, 'the bytes reported include the tags')
  t.ok((bytes ?? Infinity) <= 64 * 1024)
  t.equal(indexed, (entries ?? 0) * 100, 'the evicted entries\' tags are gone from the index')
  t.equal(await store.deleteTag('s:key-199-000'), 1, 'the newest entries are the ones kept')
  t.equal(await store.deleteTag('s:key-000-000'), 0)
})

t.test('a tag of one entry, then of two, then of one again: deleteTag finds each owner', async t => {
  const store = new MemoryStore('tag-owners', { maxEntries: 10, maxBytes: 1024 * 1024 })
  await store.set('a', '1', { tags: ['t', 't'] })
  await store.set('a', '1', { tags: ['t'] })
  t.equal(store.snapshot().bytes, 64 + 1 + 1 + 128 + 1, 'a re-set entry counts its new tags only')
  await store.set('b', '2', { tags: ['t'] })
  await store.delete('a')
  await store.set('c', '3', { tags: ['t'] })
  t.equal(store.snapshot().tags, 1)
  t.equal(await store.deleteTag('t'), 2, 'b and c')
  t.same([await store.get('a'), await store.get('b'), await store.get('c')], [undefined, undefined, undefined])
  t.equal(store.snapshot().tags, 0)
})

t.test('defineScript: local logic runs synchronously, so concurrent calls never interleave', async t => {
  const store = new MemoryStore('scripts')
  const results = await Promise.all(Array.from({ length: 100 }, () => store.run(counter, ['k'], [60_000])))
  t.equal(new Set(results).size, 100, 'no two calls saw the same count')
  t.equal(Math.max(...results), 100)
})

t.test("a script's own object: the same object back, updated in place, read by get() as its string form", async t => {
  class Count { n = 0; toString () { return `n=${this.n}` } }
  const bump = defineScript<number>({
    name: 'test-object-count',
    lua: 'return 0',
    local: (data, keys) => {
      const key = keys[0] as string
      const held = data.get(key)
      if (held instanceof Count) return ++held.n // no set: the entry keeps its expiry
      const fresh = new Count()
      fresh.n = 1
      data.set(key, fresh, 60_000)
      return 1
    }
  })
  const store = new MemoryStore('objects', { maxEntries: 10, maxBytes: 1024 })
  t.same([store.runNow(bump, ['k'], []), store.runNow(bump, ['k'], []), store.runNow(bump, ['k'], [])], [1, 2, 3], 'counted on the object kept')
  t.equal(await text(store, 'k'), 'n=3', 'get gives its toString()')
  t.equal(store.snapshot().bytes, 64 + 1 + 32, 'counted as a small object')
  await store.set('b', Buffer.alloc(100))
  t.equal(store.snapshot().bytes, 64 + 1 + 32 + 64 + 1 + 100, 'a Buffer by its length')
})

t.test('snapshot: a memory store is always up', async t => {
  const store = new MemoryStore('snap')
  await store.set('k', 'v')
  const s = store.snapshot()
  t.match(s, { name: 'snap', type: 'memory', state: 'up', lastError: null, entries: 1, bytes: 64 + 1 + 1 })
  t.match(s.since, /^\d{4}-\d\d-\d\dT/)
  await store.close()
  t.equal(store.snapshot().entries, 0, 'close empties it')
})
