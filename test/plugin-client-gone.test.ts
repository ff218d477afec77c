import t from 'tap'
import { join } from 'node:path'
import { connect } from 'node:net'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { until } from './helpers/wait.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// A plugin whose request hook waits until the test settles it: resolved, or rejected (a late failure).
type Gate = { resolve: () => void, reject: (err: Error) => void }
const gates = sharedWithPlugins<Gate[]>('gates', [])
const dir = t.testdir({})
writeUserPlugin(dir, 'gate', 500, "{ onRequest: () => new Promise<void>((resolve, reject) => { shared('gates').push({ resolve, reject }) }) }")

// A plugin whose response hook holds the answer until the test lets it go, and one that answers itself.
const holds = sharedWithPlugins<Array<() => void>>('holds', [])
writeUserPlugin(dir, 'hold', 900, "{ onResponse: () => new Promise<void>(resolve => { shared('holds').push(resolve) }) }")
writeUserPlugin(dir, 'reply', 100, "{ onRequest: () => ({ status: 200, body: 'from the plugin' }) }")

const seen: string[] = []
const [a, b] = await Promise.all(['a', 'b'].map(name => startUpstream((req, res) => { seen.push(`${name} ${req.url as string}`); res.end('ok') })))
t.teardown(() => Promise.all([a?.close(), b?.close()]))
// Routes timed and held give a request 500 ms: /timed/fast and /held/x must reach their upstream (and
// its answer the hook) within it, which a loaded machine may not do in 200 ms.
const gw = await startGateway(`
loadPlugins: [ ./gate.ts, ./hold.ts, ./reply.ts ]
upstreams:
  up: { targets: [ { url: "${a?.url}" }, { url: "${b?.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { gate: {} } }
  - { name: timed, match: { path: /timed/* }, upstream: up, timeouts: { request: 500ms } }
  - { name: held, match: { path: /held/* }, upstream: up, timeouts: { request: 500ms }, plugins: { hold: {} } }
  - { name: held-reply, match: { path: /held-reply/* }, upstream: up, timeouts: { request: 200ms }, plugins: { hold: {}, reply: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())

/** Sends a request, waits until the plugin holds it, then leaves: the gateway logs it as 499. */
async function leaveWhileHeld (path: string): Promise<Gate> {
  const controller = new AbortController()
  const res = request(`${gw.url}${path}`, { signal: controller.signal }).catch(() => undefined)
  const before = gates.length
  await until(() => gates.length > before)
  controller.abort()
  await res
  t.match(await waitForLog(gw.logs, { msg: 'request', path }), { status: 499 })
  return gates[gates.length - 1] as Gate
}

/** A request let through at once, to see what reached the upstream before it. */
async function passThrough (path: string): Promise<void> {
  const res = request(`${gw.url}${path}`)
  const before = gates.length
  await until(() => gates.length > before)
  ;(gates[gates.length - 1] as Gate).resolve()
  t.equal((await res).statusCode, 200)
  await (await res).body.text()
}

t.test('a client that leaves while a request hook runs: its request is never sent upstream, nor given a turn of the balancer', async t => {
  const held = await leaveWhileHeld('/left')
  held.resolve()
  await passThrough('/next')
  await passThrough('/next2')
  t.same(seen, ['a /next', 'b /next2'], 'round-robin from the first target')
})

t.test('a request hook that fails after its client left is no plugin failure', async t => {
  const held = await leaveWhileHeld('/left-failing')
  held.reject(new Error('failed too late'))
  await passThrough('/after')
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'nothing logged')
})

t.test('a request whose timeout fired while its body was read is never sent upstream, nor given a turn of the balancer', async t => {
  seen.length = 0
  await passThrough('/probe') // where the rotation stands
  const [last, next] = seen[0]?.startsWith('a') === true ? ['a', 'b'] : ['b', 'a']
  const u = new URL(gw.url)
  const socket = connect(Number(u.port), u.hostname)
  t.teardown(() => socket.destroy())
  const answer: Buffer[] = []
  socket.on('data', (c: Buffer) => answer.push(c))
  socket.on('error', () => {}) // closed after the answer: the rest of the body may meet a reset
  socket.write('POST /timed/slow HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12345')
  t.ok(await until(() => Buffer.concat(answer).toString().startsWith('HTTP/1.1 408 ')), 'the route\'s timeout answers (the client\'s delay: 408)')
  socket.write('67890') // the body completes after the answer
  await passThrough('/next')
  await passThrough('/next2')
  const timed = await request(`${gw.url}/timed/fast`)
  await timed.body.text()
  t.same(seen.slice(1), [`${next} /next`, `${last} /next2`, `${next} /timed/fast`], 'the timed-out request took no turn')
})

t.test('a response hook that outlives the route\'s request timeout: the 504 stands, and its late end is no plugin failure', async t => {
  for (const path of ['/held/x', '/held-reply/x']) {
    const before = holds.length
    const res = await request(`${gw.url}${path}`)
    t.equal(res.statusCode, 504, `${path}: the timeout answered`)
    await res.body.dump()
    t.equal(holds.length, before + 1, `${path}: the hook still holds the answer`)
    ;(holds[before] as () => void)()
    // The hook's end runs in this process's microtasks; a request logged after it orders the log.
    await passThrough('/after-hold')
    t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), `${path}: nothing logged`)
  }
})
