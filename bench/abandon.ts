import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { Agent, request } from 'undici'
import { startChild, stopChildren } from './children.ts'
import { LOAD_GENERATOR } from './load.ts'

// The "abandon" case (issue 15): load far above the pool size from clients that give up while
// their requests wait for a connection or are in flight, then a check that the gateway still
// serves, that every upstream connection is free again, and that a graceful stop finishes within
// shutdownTimeout. A correctness case: it fails (exit 1) rather than reporting a figure.

const run = promisify(execFile)
const POOL = 16
const ABANDONING = Number(process.env.BENCH_ABANDONING ?? 2000)
const FREE_WITHIN_MS = 5000

interface TargetState { url: string, connections: { busy: number }, inFlight: number, queued: number }
const gateway = await startChild('abandon-gateway')
const admin = gateway.info.admin as string
const targets = async (): Promise<TargetState[]> =>
  ((await (await request(`${admin}/upstreams`)).body.json()) as { upstreams: Array<{ targets: TargetState[] }> }).upstreams.flatMap(u => u.targets)
const problems: string[] = []

try {
  // 1. wrk -c300 against a pool of 16, twice: wrk closes its connections with requests still queued.
  if (LOAD_GENERATOR === 'wrk') {
    for (let i = 0; i < 2; i++) await run('wrk', ['-t1', '-c300', '-d5s', '--timeout', '1s', `${gateway.url}/slow`])
    console.log('wrk -c300 -d5s --timeout 1s twice against a pool of 16: done')
  } else console.log('wrk not installed: the wrk -c300 phase is skipped (apt-get install wrk)')

  // 2. Clients that leave after 20-1500 ms, most while queued (the origin takes 300 ms, the pool 16).
  const agent = new Agent({ connections: ABANDONING })
  const outcomes = await Promise.allSettled(Array.from({ length: ABANDONING }, (_, i) =>
    request(`${gateway.url}/slow`, { dispatcher: agent, signal: AbortSignal.timeout(20 + (i * 7919) % 1480) }).then(async r => { await r.body.dump(); return r.statusCode })))
  await agent.close()
  const answered = outcomes.filter(o => o.status === 'fulfilled').map(o => o.value)
  console.log(`${ABANDONING} clients leaving after 20-1500 ms: ${ABANDONING - answered.length} left, ${answered.filter(s => s === 200).length} got 200, ${answered.filter(s => s === 503).length} got 503`)

  // 3. Every connection free again, soon.
  const started = performance.now()
  let state = await targets()
  while (state.some(s => s.connections.busy > 0 || s.inFlight > 0 || s.queued > 0) && performance.now() - started < FREE_WITHIN_MS) {
    await new Promise(resolve => setTimeout(resolve, 50))
    state = await targets()
  }
  const freeMs = performance.now() - started
  if (state.some(s => s.connections.busy > 0 || s.inFlight > 0 || s.queued > 0)) problems.push(`connections still held after ${FREE_WITHIN_MS} ms: ${JSON.stringify(state)}`)
  else console.log(`every upstream connection free ${Math.round(freeMs)} ms after the last client left`)

  // 4. Still serving: more requests than the pool holds, each answered.
  const statuses = await Promise.all(Array.from({ length: POOL * 4 }, async () => { const r = await request(`${gateway.url}/fast`); await r.body.dump(); return r.statusCode }))
  const ok = statuses.filter(s => s === 200).length
  if (ok !== statuses.length) problems.push(`after the abandon phase, ${ok}/${statuses.length} normal requests got 200`)
  else console.log(`${ok}/${statuses.length} normal requests answered 200 afterwards`)

  // 5. A graceful stop finishes within shutdownTimeout.
  gateway.process.send('shutdown')
  const [reply] = await once(gateway.process, 'message') as [{ closedMs: number }]
  if (reply.closedMs > (gateway.info.shutdownTimeoutMs as number)) problems.push(`graceful stop took ${Math.round(reply.closedMs)} ms`)
  else console.log(`graceful stop in ${Math.round(reply.closedMs)} ms`)
} finally {
  await stopChildren()
}
if (problems.length > 0) {
  console.error(`abandon case FAILED:\n  ${problems.join('\n  ')}`)
  process.exitCode = 1
} else console.log('abandon case: passed')
