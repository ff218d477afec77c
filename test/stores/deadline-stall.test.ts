import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Deadlines } from '../../src/deadlines.ts'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { callUntil, until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

const TIMEOUT_MS = 100

/** A store on a real server of the test's own, up; its failed calls and state changes as the registry would see them. */
async function upStore (t: Test): Promise<{ redis: RedisProcess, store: RedisStore, seen: { failed: number, states: Array<StoreSnapshot['state']> } }> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const seen = { failed: 0, states: [] as Array<StoreSnapshot['state']> }
  const events: RedisStoreEvents = { state (_s, state) { seen.states.push(state) }, failed () { seen.failed++ }, command () {} }
  const store = new RedisStore('stall', { url: redis.url, keyPrefix: 'ds:', connectTimeout: 2_000, commandTimeout: TIMEOUT_MS }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return { redis, store, seen }
}

/** `call` until it succeeds, for at most 5 s: a step the test needs done, which a commandTimeout of 100 ms can fail once on a loaded machine. */
async function done<T> (call: () => Promise<T>): Promise<T> {
  for (const start = performance.now(); ;) {
    try { return await call() } catch (err) { if (performance.now() - start >= 5_000) throw err }
  }
}

/** Blocks the event loop, as a busy process does. */
function busy (ms: number): void {
  for (const end = performance.now() + ms; performance.now() < end;);
}

t.test('calls answered while the event loop was blocked past commandTimeout succeed, no failure counted', async t => {
  const { redis, store, seen } = await upStore(t)
  // The script loaded (a first EVALSHA is answered NOSCRIPT, then sent as EVAL): the calls below are one round trip each.
  await done(() => store.run(counter, ['warm'], [0]))
  await done(() => store.set('k', 'v'))
  const failedBefore = seen.failed
  for (let round = 0; round < 3; round++) {
    const calls = [store.get('k'), store.run(counter, ['n'], [0]), store.set(`k${round}`, 'w')]
    // The calls go out in a setImmediate (auto-pipeline, script batch): written, then the process is busy while Redis answers.
    await new Promise(resolve => setImmediate(resolve))
    busy(2 * TIMEOUT_MS)
    const settled = await Promise.allSettled(calls)
    t.same(settled.map(s => s.status === 'rejected' ? (s.reason as Error).message : 'answered'), ['answered', 'answered', 'answered'], `round ${round}: each call got its answer`)
  }
  t.equal(seen.failed, failedBefore, 'no store error counted')
  t.equal(await redis.cli('GET', 'ds:n'), '3', 'each charge answered')
  t.same(seen.states, ['up'], 'the store stayed up')
})

/** A TCP proxy to the Redis on `port` passing its replies on `delay.ms` late; its connections counted. */
async function delayingProxy (t: Test, port: number, delay: { ms: number }): Promise<{ port: number, connections: () => number }> {
  const sockets: Socket[] = []
  const server = createServer(client => {
    const upstream = connect(port, '127.0.0.1')
    sockets.push(client, upstream)
    client.on('data', (d: Buffer) => upstream.write(d))
    upstream.on('data', (d: Buffer) => { if (delay.ms === 0) client.write(d); else setTimeout(() => client.write(d), delay.ms) })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>(resolve => { server.close(() => resolve()); for (const s of sockets) s.destroy() }))
  return { port: (server.address() as AddressInfo).port, connections: () => sockets.length / 2 }
}

// Every reply, even one after its call had failed, once counted as the server answering: a Redis
// answering every call late (each failing) kept the store up for ever, its connection never replaced.
t.test('a server answering every call after its deadline is judged down, its connection replaced; up again once it answers in time', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const delay = { ms: 0 }
  const proxy = await delayingProxy(t, redis.port, delay)
  const states: Array<StoreSnapshot['state']> = []
  const events: RedisStoreEvents = { state (_s, state) { states.push(state) }, failed () {}, command () {} }
  const store = new RedisStore('late', { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: 'ds:', connectTimeout: 2_000, commandTimeout: TIMEOUT_MS }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  await done(() => store.set('k', 'v'))
  delay.ms = 2.5 * TIMEOUT_MS
  let answered = 0
  const errors = new Set<string>()
  t.ok(await callUntil(() => store.get('k').then(() => { answered++ }, (err: Error) => { errors.add(err.message) }), () => store.snapshot().state === 'down', 5_000), 'judged down')
  t.equal(answered, 0, 'no call answered in time')
  t.ok(errors.has('Command timed out'), 'calls failed at their deadline')
  t.ok(await until(() => proxy.connections() >= 2), 'its connection replaced')
  delay.ms = 0
  t.ok(await callUntil(() => store.get('k'), () => store.snapshot().state === 'up', 5_000), 'up again at a call answered in time')
  t.same(states, ['up', 'down', 'up'])
})

/** A plain connection to a redis-server of its own, for answers that arrive while the process is busy. */
async function redisSocket (t: Test): Promise<Socket> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const socket = connect(redis.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  return socket
}

t.test('Deadlines: an entry whose answer waits unread when its deadline passes is taken, not expired', async t => {
  const socket = await redisSocket(t)
  const expired: string[] = []
  const deadlines = new Deadlines<string>(20, item => { expired.push(item) })
  const answered = deadlines.add('answered')
  deadlines.add('unanswered')
  const taken = new Promise(resolve => socket.once('data', () => resolve(deadlines.take(answered))))
  socket.write('PING\r\n')
  // The answer arrives while the process is busy past both deadlines: read before either expires.
  busy(60)
  t.equal(await taken, true, 'taken in time')
  t.ok(await until(() => expired.length === 1), 'the other one expired')
  t.same(expired, ['unanswered'])
})

t.test('Deadlines: an entry due while an earlier immediate blocks the loop is taken when its answer waits unread, not expired', async t => {
  const socket = await redisSocket(t)
  const expired: string[] = []
  const deadlines = new Deadlines<string>(20, item => { expired.push(item) })
  deadlines.add('first')
  // Due after the timer runs, while the immediate below blocks the loop; its answer comes then.
  const answered = deadlines.add('answered', performance.now() + 80)
  // Due before the deadlines' timer: both run in the same timers phase (the loop busy past them), its immediate before their expiry.
  setTimeout(() => setImmediate(() => { socket.write('PING\r\n'); busy(200) }), 1)
  busy(30)
  t.equal(await new Promise(resolve => socket.once('data', () => resolve(deadlines.take(answered)))), true, 'taken in time')
  t.same(expired, ['first'], 'only the entry due when the timer ran expired')
})

// expireAll bounded its loop by an index: an `expire` that took an entry compacted the queue under
// it, and the loop then expired entries added meanwhile and left the ids of the rest pointing astray.
t.test('Deadlines.expireAll: an expire that takes and adds entries expires only those there before', async t => {
  const expired: string[] = []
  let other = 0
  const deadlines = new Deadlines<string>(10_000, item => {
    expired.push(item)
    if (item === 'a') { deadlines.take(other); deadlines.add('c') }
  })
  deadlines.add('a')
  other = deadlines.add('b')
  deadlines.expireAll()
  t.same(expired, ['a'], 'b taken, c added after')
  const d = deadlines.add('d')
  t.equal(deadlines.take(d), true, 'a later entry is found by its id')
  deadlines.expireAll()
  t.same(expired, ['a', 'c'])
})
