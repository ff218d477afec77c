import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { RedisStore } from '../../src/stores/redis-store.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { until } from '../../test/helpers/wait.ts'

// A connection lost while a tagged entry is written (the cache's set: the entry, its tag record,
// its tag sets) leaves no entry that its tags do not name: an invalidation would miss it.

const { redis, raw } = await redisWithClient(t)

/**
 * A proxy to Redis that passes on what its client sends up to its first script call (a tag set's add),
 * then closes both ways: the server runs the commands before it, none after.
 */
async function cutAtFirstScript (): Promise<number> {
  const sockets: Socket[] = []
  let cut = false
  const server = createServer(client => {
    const upstream = connect(redis.port, '127.0.0.1')
    sockets.push(client, upstream)
    client.on('data', (d: Buffer) => {
      if (cut) return
      // ioredis sends a script's first call on a connection as EVAL, the next ones as EVALSHA.
      const at = d.toString('latin1').search(/\r\neval(sha)?\r\n/i)
      if (at === -1) { upstream.write(d); return }
      cut = true
      // Back to the start of the command: its `*<n>` array header.
      upstream.end(d.subarray(0, d.lastIndexOf('*', at)))
      client.destroy()
    })
    upstream.on('data', (d: Buffer) => { if (!cut) client.write(d) })
    client.on('close', () => { if (!cut) upstream.destroy() })
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.close(() => resolve()); for (const s of sockets) s.destroy() }))
  return (server.address() as AddressInfo).port
}

t.test('a tagged set cut midway: the value is written after its tags, never without them', async t => {
  const port = await cutAtFirstScript()
  const store = new RedisStore('cut', { url: `redis://127.0.0.1:${port}`, keyPrefix: 'order:', connectTimeout: 1_000, commandTimeout: 2_000 }, { state () {}, failed () {}, command () {} })
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  await t.rejects(store.set('entry', 'v', { ttlMs: 60_000, tags: ['u:x/page'] }), { code: 'STORE_UNAVAILABLE' }, 'the connection was lost')
  // What came before the cut has run once the tag record, the first command, is there (sent in one write).
  let record = 0
  for (let i = 0; i < 250 && record === 0; i++) {
    record = await raw.exists('order:tag:{}order:entry')
    if (record === 0) await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.equal(record, 1, 'the commands before the cut ran')
  const written = await raw.exists('order:entry')
  const named = await raw.sismember('order:tag:{u:x/page}', 'order:entry')
  t.same({ written, named }, { written: 0, named: 0 }, 'no value without its tags')
})
