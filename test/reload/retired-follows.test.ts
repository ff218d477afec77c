import t, { type Test } from 'tap'
import { promises as dnsPromises, type LookupAllOptions } from 'node:dns'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import type { Runtime } from '../../src/runtime/runtime.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// A config a reload retires keeps its health checks (and DNS discovery) while a request there may
// still pick a target (a slow upload). Of a target the config in service checks alike, it takes that
// config's verdicts instead of checking it again: else each reload during long uploads added a checker
// (and a connection) per target, 5 checks/s becoming 93/s after 20 reloads.

/** A target counting its health checks by connection (each config's checker has its own); anything else is an upload it reads to the end. */
async function checkedTarget (t: Test): Promise<{ url: string, checks: Map<Socket, number>, uploads: () => number, fail: (failing: boolean) => void }> {
  const checks = new Map<Socket, number>()
  let uploads = 0
  let failing = false
  const server: Server = createServer((req, res) => {
    if (req.url === '/health') {
      checks.set(req.socket, (checks.get(req.socket) ?? 0) + 1)
      res.statusCode = failing ? 503 : 200
      res.end()
      return
    }
    uploads++
    req.resume()
    req.on('end', () => res.end('stored'))
  })
  // As long as nginx's: an idle check connection is not closed by the target before the test looks.
  server.keepAliveTimeout = 75_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => { server.closeAllConnections(); server.close(resolve) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, checks, uploads: () => uploads, fail: f => { failing = f } }
}

/** Uploads that stay in flight (the body never ends) until the test ends. */
function uploader (t: Test, gw: TestGateway): () => void {
  const bodies: PassThrough[] = []
  const done: Array<Promise<unknown>> = []
  t.teardown(async () => { for (const b of bodies) b.end(); await Promise.all(done) })
  return () => {
    const body = new PassThrough()
    body.write('the first part of a large upload')
    bodies.push(body)
    done.push(request(`${gw.url}/upload`, { method: 'POST', body }).then(async r => r.body.text(), () => undefined))
  }
}

const open = (checks: Map<Socket, number>) => [...checks.keys()].filter(s => !s.destroyed)
const sum = (checks: Map<Socket, number>) => [...checks.values()].reduce((n, c) => n + c, 0)

t.test('retired configs with uploads in flight take the verdicts of the config in service, checking nothing again', async t => {
  const target = await checkedTarget(t)
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  svc:
    targets: [ { url: "${target.url}" } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1, healthyAfter: 1 }
routes:
  - { name: upload-${n}, match: { path: /* }, upstream: svc }
`
  const gw = await startGateway(yaml(0))
  t.teardown(() => gw.close())
  const upload = uploader(t, gw)
  const retired: Runtime[] = []
  for (let n = 1; n <= 8; n++) {
    upload()
    t.ok(await until(() => target.uploads() === n), `upload ${n} reached the target`)
    retired.push(gw.gateway.runtime)
    await gw.apply(await parseConfig(yaml(n), 'test.yaml'))
  }
  t.same(retired.map(r => r.inFlight), [1, 1, 1, 1, 1, 1, 1, 1], 'each retired config holds its upload, which may still be retried')

  // Each retired config's checker closes its connection at its next check (not at the target's keep-alive timeout): one is left, the one in service's.
  t.ok(await until(() => open(target.checks).length === 1, 5_000), `check connections open: ${open(target.checks).length}`)
  // A rate, as the checks' connections may change (a check timed out on a loaded machine): a slower machine only lowers it.
  const from = sum(target.checks)
  await new Promise(resolve => setTimeout(resolve, 2_000))
  const checks = sum(target.checks) - from
  t.ok(checks > 0 && checks <= 15, `checks in 2 s: ${checks} (one checker every 200 ms: 10; nine, without following: 90)`)

  const svc = (r: Runtime) => r.upstreams.get('svc')?.targets[0]?.healthy
  target.fail(true)
  t.ok(await until(() => [...retired, gw.gateway.runtime].every(r => svc(r) === false), 10_000), 'the target failing, every config takes it out')
  target.fail(false)
  t.ok(await until(() => [...retired, gw.gateway.runtime].every(r => svc(r) === true), 10_000), 'and back in')
  t.ok(await until(() => open(target.checks).length === 1), 'still by the one checker')
})

t.test('a retired config keeps checking the targets the config in service dropped, not the others', async t => {
  const [kept, dropped] = [await checkedTarget(t), await checkedTarget(t)]
  const yaml = (urls: string[]) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  svc:
    targets: [ ${urls.map(u => `{ url: "${u}" }`).join(', ')} ]
    healthCheck: { path: /health, interval: 200ms }
routes:
  - { name: upload-${urls.length}, match: { path: /* }, upstream: svc }
`
  const gw = await startGateway(yaml([kept.url, dropped.url]))
  t.teardown(() => gw.close())
  const upload = uploader(t, gw)
  upload()
  t.ok(await until(() => kept.uploads() + dropped.uploads() === 1), 'an upload in flight')
  await gw.apply(await parseConfig(yaml([kept.url]), 'test.yaml'))
  t.ok(await until(() => kept.checks.size >= 2), 'the target kept: checked by the new config')
  t.ok(await until(() => open(kept.checks).length === 1, 10_000), 'and no longer by the retired one')
  const from = sum(dropped.checks)
  t.ok(await until(() => sum(dropped.checks) >= from + 3, 10_000), 'the target dropped: still checked by the retired config, where a retry may pick it')
})

t.test('retired configs with uploads in flight take the addresses the config in service resolves', async t => {
  const target = await checkedTarget(t)
  const port = new URL(target.url).port
  let answer = ['127.0.0.1']
  let lookups = 0
  const lookup = dnsPromises.lookup
  dnsPromises.lookup = (async (host: string, options: LookupAllOptions) => {
    if (host !== 'svc.test') return await lookup(host, options)
    lookups++
    return answer.map(address => ({ address, family: 4 }))
  }) as typeof lookup
  t.teardown(() => { dnsPromises.lookup = lookup })
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  svc: { targets: [ { url: "http://svc.test:${port}", resolve: dns, dnsInterval: 1s } ] }
routes:
  - { name: upload-${n}, match: { path: /* }, upstream: svc }
`
  const gw = await startGateway(yaml(0))
  t.teardown(() => gw.close())
  const upload = uploader(t, gw)
  const retired: Runtime[] = []
  for (let n = 1; n <= 6; n++) {
    upload()
    t.ok(await until(() => target.uploads() === n), `upload ${n} reached the target`)
    retired.push(gw.gateway.runtime)
    await gw.apply(await parseConfig(yaml(n), 'test.yaml'))
  }
  // One config resolving every second takes 2 s or more for 3 lookups; seven, less than one.
  const [from, start] = [lookups, performance.now()]
  t.ok(await until(() => lookups >= from + 3, 10_000))
  const took = performance.now() - start
  t.ok(took >= 1_500, `3 lookups in ${Math.round(took)} ms: only the config in service resolves`)

  answer = ['127.0.0.1', '127.0.0.2']
  const urls = (r: Runtime) => r.upstreams.get('svc')?.targets.map(x => x.url).sort().join(' ')
  const both = `http://127.0.0.1:${port} http://127.0.0.2:${port}`
  t.ok(await until(() => [...retired, gw.gateway.runtime].every(r => urls(r) === both), 10_000), 'a new answer reaches every retired config')
})
