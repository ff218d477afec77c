import t from 'tap'
import { oneSlotGroup, ScriptBatches, slotGroup } from '../../src/stores/script-batches.ts'

t.test('calls are grouped by Redis Cluster hash tag, as Redis picks a slot', async t => {
  t.equal(slotGroup('pc:rl:{consumer-7}:burst'), 'consumer-7')
  t.equal(slotGroup('{a}{b}'), 'a', 'the first tag counts')
  t.equal(slotGroup('x}{y}'), 'y', 'a } before the first { is no tag')
  t.equal(slotGroup('pc:{}:n'), 'pc:{}:n', 'an empty tag is no tag: the whole key')
  t.equal(slotGroup('pc:{open'), 'pc:{open', 'nor is an unclosed one')
  t.equal(slotGroup(undefined), '', 'a call without keys')
})

t.test('a sender that throws fails the calls of its batch, not the process', async t => {
  const batches = new ScriptBatches(() => { throw new Error('cannot send') }, false)
  const calls = [batches.call(['a'], [1]), batches.call(['b'], [2])]
  const settled = await Promise.allSettled(calls)
  t.same(settled.map(s => s.status === 'rejected' ? (s.reason as Error).message : 'fulfilled'), ['cannot send', 'cannot send'])
})

t.test('one batch per group and turn: keys, counts and arguments laid out as batchLua reads them', async t => {
  const sent: Array<{ keys: string[], args: Array<string | number> }> = []
  const batches = new ScriptBatches(async (keys, args) => {
    sent.push({ keys, args })
    // One result per call, in the order made; an Error stands for an error reply.
    return keys[0] === '{x}:a' ? ['a and b', new Error('refused')] : ['c']
  }, true)
  const results = await Promise.allSettled([
    batches.call(['{x}:a', '{x}:b'], ['p', 'q']),
    batches.call(['{y}:c'], [7]),
    batches.call(['{x}:bad'], [])
  ])
  t.same(sent, [
    { keys: ['{x}:a', '{x}:b', '{x}:bad'], args: [2, 2, 2, 1, 0, 'p', 'q'] },
    { keys: ['{y}:c'], args: [1, 1, 1, 7] }
  ])
  t.same(results.map(r => r.status === 'fulfilled' ? r.value : (r.reason as Error).message), ['a and b', 'c', 'refused'])
})

t.test('whether keys share a slot group, compared as Redis picks a slot', async t => {
  t.ok(oneSlotGroup([]), 'no keys')
  t.ok(oneSlotGroup(['{a}:1']), 'one key')
  t.ok(oneSlotGroup(['pc:{a}:1', 'pc:{a}:2', 'x{a}']), 'one tag')
  t.ok(oneSlotGroup(['a', 'pc:{a}:2']), 'a key without a tag hashes as a whole: the same as tag a')
  t.ok(oneSlotGroup(['plain', 'plain']), 'the same untagged key')
  t.notOk(oneSlotGroup(['{a}:1', '{b}:2']), 'two tags')
  t.notOk(oneSlotGroup(['{a}:1', '{ab}:2']), 'a longer tag')
  t.notOk(oneSlotGroup(['{ab}:1', '{a}:2']), 'a shorter tag')
  t.notOk(oneSlotGroup(['{q}:2', 'plain']), 'a tag, then a key without one')
  t.notOk(oneSlotGroup(['pc:{}:n', 'pc:{}:m']), 'an empty tag is no tag: two whole keys')
})

t.test('on Cluster, a call whose keys span slot groups is sent alone; the others of its turn are batched as before', async t => {
  const sent: string[][] = []
  const batches = new ScriptBatches(async keys => { sent.push(keys); return keys.map(() => 'ok') }, true)
  await Promise.all([
    batches.call(['{q}:1'], []),
    batches.call(['{q}:2', 'plain'], []),
    batches.call(['{q}:5', '{q}:6'], [])
  ])
  t.same(sent, [['{q}:2', 'plain'], ['{q}:1', '{q}:5', '{q}:6']])
})

t.test('on a single server, any keys go together', async t => {
  const sent: string[][] = []
  const batches = new ScriptBatches(async keys => { sent.push(keys); return keys.map(() => 'ok') }, false)
  await Promise.all([batches.call(['{a}:1', '{b}:2'], []), batches.call(['c'], [])])
  t.same(sent, [['{a}:1', '{b}:2', 'c']])
})
