import t from 'tap'
import { ScriptBatches, slotGroup } from '../../src/stores/script-batches.ts'

t.test('calls are grouped by Redis Cluster hash tag, as Redis picks a slot', async t => {
  t.equal(slotGroup('pc:rl:{consumer-7}:burst'), 'consumer-7')
  t.equal(slotGroup('{a}{b}'), 'a', 'the first tag counts')
  t.equal(slotGroup('x}{y}'), 'y', 'a } before the first { is no tag')
  t.equal(slotGroup('pc:{}:n'), 'pc:{}:n', 'an empty tag is no tag: the whole key')
  t.equal(slotGroup('pc:{open'), 'pc:{open', 'nor is an unclosed one')
  t.equal(slotGroup(undefined), '', 'a call without keys')
})

t.test('a sender that throws fails the calls of its batch, not the process', async t => {
  const batches = new ScriptBatches(() => { throw new Error('cannot send') }, () => '')
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
  }, slotGroup)
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
