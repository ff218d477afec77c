import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { request } from 'undici'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { waitForLog } from '../helpers/logs.ts'

/**
 * Issue 15: requests that end before or while their upstream try runs must give their connection
 * back. An upstream that answers /slow… after `slowMs` (without it: only once the test calls
 * `release()`, at once after that), /stuck never, and anything else at once, and counts what it
 * received and what was aborted.
 */
async function upstream (t: Test, slowMs?: number) {
  const seen = { slow: 0, aborted: 0, paths: [] as string[] }
  const held = new Set<() => void>()
  let holding = slowMs === undefined
  const up = await startUpstream((req, res) => {
    seen.paths.push(req.url as string)
    if (req.url === '/stuck') return
    if (!(req.url as string).startsWith('/slow')) { res.end('fast'); return }
    seen.slow++
    const answer = () => { held.delete(answer); clearTimeout(timer); if (!res.writableEnded) res.end('slow') }
    held.add(answer)
    const timer = holding ? undefined : setTimeout(answer, slowMs ?? 0)
    res.on('close', () => { if (!res.writableFinished) { held.delete(answer); clearTimeout(timer); seen.aborted++ } })
  })
  t.teardown(() => up.close())
  /** Answers the /slow… requests held so far, and those to come at once (when there is no `slowMs`). */
  const release = () => { holding = false; for (const answer of [...held]) answer() }
  return { up, seen, release }
}

async function gateway (t: Test, up: TestUpstream, upstreamKeys: string, server = ''): Promise<TestGateway> {
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
${server}
upstreams:
  up:
    targets: [ { url: "${up.url}" } ]
${upstreamKeys}
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return gw
}

/** A GET on its own connection that the client drops once `cue` settles (a number: after that many ms), whatever state it is in. */
function dropAfter (port: number, path: string, cue: number | Promise<unknown>): Promise<void> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`))
    socket.on('error', () => {})
    socket.on('close', () => resolve())
    if (typeof cue === 'number') setTimeout(() => socket.destroy(), cue)
    else void cue.finally(() => socket.destroy())
  })
}

const get = async (url: string) => {
  const res = await request(url)
  return { status: res.statusCode, body: await res.body.text() }
}

const port = (gw: TestGateway) => Number(new URL(gw.url).port)
const target = (gw: TestGateway) => gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]
/** Every connection free, nothing in flight or waiting. */
const idle = (gw: TestGateway) => {
  const s = target(gw)
  return s !== undefined && s.connections.busy === 0 && s.inFlight === 0 && s.queued === 0
}

t.test('requests dropped while they wait for a connection are never sent and block nothing (issue 15, item 1)', async t => {
  // The two /slow requests hold both connections until released: the others can only wait, then leave.
  const { up, seen, release } = await upstream(t)
  const gw = await gateway(t, up, '    connections: 2')
  const slow = [get(`${gw.url}/slow1`), get(`${gw.url}/slow2`)]
  t.ok(await until(() => seen.slow === 2), 'both connections busy')
  // Two more wait for one of the two connections, then their clients give up.
  const queued = until(() => target(gw)?.queued === 2)
  const dropped = [dropAfter(port(gw), '/slow-dropped-1', queued), dropAfter(port(gw), '/slow-dropped-2', queued)]
  t.ok(await queued, 'both wait in the gateway')
  await Promise.all(dropped)
  t.ok(await until(() => target(gw)?.queued === 0), 'a client that leaves leaves the queue (no connection freed meanwhile)')
  release()
  t.same(await Promise.all(slow), [{ status: 200, body: 'slow' }, { status: 200, body: 'slow' }])
  t.same(await Promise.all([get(`${gw.url}/a`), get(`${gw.url}/slow3`), get(`${gw.url}/b`)]),
    [{ status: 200, body: 'fast' }, { status: 200, body: 'slow' }, { status: 200, body: 'fast' }], 'still served')
  t.notOk(seen.paths.some(p => p.includes('dropped')), 'the dropped requests never reached the upstream')
  t.ok(await until(() => idle(gw)), 'every connection free')
})

t.test('a request dropped in flight aborts its try: the connection is closed, not left paused', async t => {
  const { up, seen } = await upstream(t, 5_000)
  const gw = await gateway(t, up, '    connections: 1')
  // Dropped once the upstream has it (or after 5 s, then failing below).
  await dropAfter(port(gw), '/slow-inflight', until(() => seen.slow === 1))
  t.ok(await until(() => seen.aborted === 1), 'the upstream saw the abort')
  t.same(await get(`${gw.url}/after`), { status: 200, body: 'fast' })
  t.ok(await until(() => idle(gw)), 'every connection free')
})

t.test("the route's request timeout aborts the try under way: the upstream sees it, the connection is free at once", async t => {
  const { up, seen } = await upstream(t, 60_000)
  const gw = await gateway(t, up, '    connections: 1\n    timeouts: { request: 200ms }')
  const res = await get(`${gw.url}/slow-timed-out`)
  t.equal(res.status, 504)
  t.match(await waitForLog(gw.logs, { msg: 'upstream request failed' }),
    { err: { code: 'REQUEST_TIMEOUT', message: "no complete response within the route's request timeout (200 ms)" } }, 'logged, with the reason')
  t.ok(await until(() => seen.aborted === 1), 'the upstream saw the abort')
  t.same(await get(`${gw.url}/after`), { status: 200, body: 'fast' }, 'the only connection serves the next request')
  t.ok(await until(() => idle(gw)), 'every connection free')
})

t.test('a request the client drops while its answer is on the way does not pause the connection', async t => {
  // The answer's head comes while the client is already gone: the try is aborted, never paused.
  const up = await startUpstream((req, res) => {
    if (req.url === '/head-late') { res.writeHead(200); setTimeout(() => res.end('x'), 300); return }
    res.end('fast')
  })
  t.teardown(() => up.close())
  const gw = await gateway(t, up, '    connections: 1')
  await dropAfter(port(gw), '/head-late', 100)
  t.same(await get(`${gw.url}/after`), { status: 200, body: 'fast' })
  t.ok(await until(() => idle(gw)), 'every connection free')
})

t.test('queue full: 503 upstream_busy at once, counted and logged; the waiting request is still served', async t => {
  const { up, seen, release } = await upstream(t)
  const gw = await gateway(t, up, '    connections: 1\n    queue: { max: 1 }')
  const first = get(`${gw.url}/slow-1`)
  t.ok(await until(() => seen.slow === 1), 'the connection is busy')
  const second = get(`${gw.url}/slow-2`)
  t.ok(await until(() => target(gw)?.queued === 1), 'the queue is full')
  const third = await request(`${gw.url}/slow-3`)
  t.equal(third.statusCode, 503)
  t.equal(third.headers['retry-after'], '1', 'clients that back off on Retry-After do')
  t.match(await third.body.json(), { error: 'upstream_busy' })
  release()
  t.same(await Promise.all([first, second]), [{ status: 200, body: 'slow' }, { status: 200, body: 'slow' }])
  t.match(await gw.metrics.registry.metrics(), /portcullis_upstream_busy_total\{upstream="up",reason="queue-full"\} 1/)
  t.ok(gw.logs.some(l => l.msg === 'upstream busy: request refused' && l.reason === 'queue-full'), 'logged')
  t.ok(await until(() => idle(gw)), 'every connection free')
})

t.test('queue timeout: a request that waits too long gets 503 upstream_busy and is never sent', async t => {
  const { up, seen, release } = await upstream(t)
  const gw = await gateway(t, up, '    connections: 1\n    queue: { timeout: 100ms }')
  const first = get(`${gw.url}/slow-1`)
  t.ok(await until(() => seen.slow === 1), 'the connection is busy')
  const waited = await request(`${gw.url}/slow-waits`)
  t.equal(waited.statusCode, 503)
  t.match(await waited.body.json(), { error: 'upstream_busy' })
  release()
  t.same(await first, { status: 200, body: 'slow' })
  t.same(await get(`${gw.url}/after`), { status: 200, body: 'fast' })
  t.notOk(seen.paths.includes('/slow-waits'), 'never sent')
  t.match(await gw.metrics.registry.metrics(), /portcullis_upstream_busy_total\{upstream="up",reason="queue-timeout"\} 1/)
  t.ok(await until(() => idle(gw)), 'every connection free')
})

t.test('queue timeout: a request let in before its timeout is served, however long its answer then takes', async t => {
  // /hold answers when the test releases it, /long after 1.5 s.
  let release: (() => void) | undefined
  const up = await startUpstream((req, res) => {
    if (req.url === '/hold') release = () => res.end(req.url)
    else setTimeout(() => res.end(req.url), 1_500)
  })
  t.teardown(() => { release?.(); return up.close() })
  const gw = await gateway(t, up, '    connections: 1\n    queue: { timeout: 1s }')
  const first = get(`${gw.url}/hold`)
  t.ok(await until(() => release !== undefined && target(gw)?.inFlight === 1), 'the first request holds the connection')
  const second = get(`${gw.url}/long`)
  t.ok(await until(() => target(gw)?.queued === 1), 'the second request waits')
  release?.()
  t.same(await first, { status: 200, body: '/hold' })
  // Let in at once, it is answered 1.5 s later: past the 1 s it could have waited.
  t.same(await second, { status: 200, body: '/long' })
  t.notOk(gw.logs.some(l => l.msg === 'upstream busy: request refused'), 'nothing refused')
})

t.test('queue timeout 0: a request waits for its connection as long as it takes, and the wait is measured', async t => {
  const { up, seen, release } = await upstream(t)
  const gw = await gateway(t, up, '    connections: 1\n    queue: { timeout: 0 }')
  const first = get(`${gw.url}/slow-1`)
  t.ok(await until(() => seen.slow === 1), 'the connection is busy')
  const sentAt = performance.now()
  const second = get(`${gw.url}/slow-2`)
  t.ok(await until(() => target(gw)?.queued === 1), 'queued')
  release()
  t.same(await Promise.all([first, second]), [{ status: 200, body: 'slow' }, { status: 200, body: 'slow' }])
  const took = (performance.now() - sentAt) / 1000
  const text = await gw.metrics.registry.metrics()
  t.match(text, /portcullis_upstream_queue_wait_seconds_count\{upstream="up"\} 1\n/, 'one wait observed')
  const waited = Number(/portcullis_upstream_queue_wait_seconds_sum\{upstream="up"\} (\S+)/.exec(text)?.[1])
  t.ok(waited > 0 && waited < took, `the wait (${waited} s) is a part of the request's time (${took} s)`)
})

t.test('soak: thousands of requests dropped queued or in flight leave every connection free, and shutdown ends in time', async t => {
  const { up, seen } = await upstream(t, 30)
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  shutdownTimeout: 2s
upstreams:
  up: { targets: [ { url: "${up.url}" } ], connections: 4 }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  const p = port(gw)
  const N = 2_000
  const drops: Array<Promise<void>> = []
  // In waves, so that some are dropped while queued, some in flight, some after their answer.
  for (let i = 0; i < N; i++) {
    drops.push(dropAfter(p, `/slow-${i}`, 5 + (i % 50)))
    if (i % 200 === 199) await new Promise(resolve => setImmediate(resolve))
  }
  // A normal client is served meanwhile.
  const normal = await get(`${gw.url}/normal`)
  await Promise.all(drops)
  t.same(normal, { status: 200, body: 'fast' })
  t.ok(await until(() => idle(gw), 10_000), 'every connection free')
  t.ok(seen.slow < N, `queued requests dropped were never sent (${seen.slow} of ${N} reached the upstream)`)
  t.same(await get(`${gw.url}/after`), { status: 200, body: 'fast' })
  // A shutdown with a request stuck in flight ends at the deadline.
  const stuck = request(`${gw.url}/stuck`).catch(() => undefined)
  await until(() => seen.paths.includes('/stuck'))
  const started = performance.now()
  await gw.close()
  await stuck
  const took = performance.now() - started
  t.ok(took >= 1_900 && took < 4_000, `stopped at shutdownTimeout (2s), took ${Math.round(took)} ms`)
})
