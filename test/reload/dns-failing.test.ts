import t, { type Test } from 'tap'
import { promises as dnsPromises, type LookupAllOptions } from 'node:dns'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import type { Runtime } from '../../src/runtime/runtime.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

// A reload while DNS fails (or answers empty) kept the name itself as the target: every request was
// a 502 until DNS answered again. The new config starts from the addresses the one it replaces had,
// and with them what was learned of them (here: an ejection).

/** svc.test answers `answer()` to the gateway's discovery (as tests fake DNS); throwing is a failed lookup. */
function fakeDns (t: Test, answer: () => string[]): void {
  const lookup = dnsPromises.lookup
  dnsPromises.lookup = (async (host: string, options: LookupAllOptions) => {
    if (host !== 'svc.test') return await lookup(host, options)
    return answer().map(address => ({ address, family: 4 }))
  }) as typeof lookup
  t.teardown(() => { dnsPromises.lookup = lookup })
}

const statuses = async (gw: TestGateway, n: number): Promise<number[]> => {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const res = await request(`${gw.url}/x`)
    await res.body.dump()
    out.push(res.statusCode)
  }
  return out
}

/**
 * svc.test first answers 127.0.0.1 (the target) and 127.0.0.2 (nothing listens there: refused, 502,
 * ejected for an hour); then `broken` is what DNS does when the config is reloaded.
 */
async function reloadWhileDnsIs (t: Test, broken: () => string[]): Promise<{ gw: TestGateway, reload: (n: number) => Promise<void> }> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  let failing = false
  fakeDns(t, () => failing ? broken() : ['127.0.0.1', '127.0.0.2'])
  const yaml = (n: number) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  svc:
    targets: [ { url: "http://svc.test:${up.port}", resolve: dns, dnsInterval: 1s } ]
    passive: { consecutiveFailures: 1, baseEjection: 1h, maxEjection: 1h }
    retries: false
routes:
  - { name: all-${n}, match: { path: /* }, upstream: svc }
`
  const gw = await startGateway(yaml(0))
  t.teardown(() => gw.close())
  t.same(new Set(await statuses(gw, 4)), new Set([200, 502]), 'both addresses tried')
  t.same(await statuses(gw, 4), [200, 200, 200, 200], '127.0.0.2 ejected')
  failing = true
  const reload = async (n: number) => {
    await gw.apply(await parseConfig(yaml(n), 'test.yaml'))
    const targets = gw.gateway.runtime.upstreams.get('svc')!.targets
    t.same(targets.map(x => x.url).sort(), [`http://127.0.0.1:${up.port}`, `http://127.0.0.2:${up.port}`], `reload ${n}: the new config has the last addresses, not the name`)
    t.same(await statuses(gw, 6), [200, 200, 200, 200, 200, 200], `reload ${n}: served, 127.0.0.2 still ejected`)
  }
  await reload(1)
  return { gw, reload }
}

const failed = () => { throw Object.assign(new Error('getaddrinfo EAI_AGAIN svc.test'), { code: 'EAI_AGAIN' }) }

t.test('a reload while lookups fail keeps the last addresses and what was learned of them', async t => {
  await reloadWhileDnsIs(t, failed)
})

t.test('a reload while the name has no addresses keeps the last ones', async t => {
  await reloadWhileDnsIs(t, () => [])
})

t.test('reloads while lookups fail pass the addresses on, not the configs they replaced', async t => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const { gw, reload } = await reloadWhileDnsIs(t, failed)
  const replaced: Array<WeakRef<Runtime>> = []
  for (let n = 2; n <= 6; n++) {
    replaced.push(new WeakRef(gw.gateway.runtime))
    await reload(n)
  }
  const alive = () => { gc(); return replaced.filter(r => r.deref() !== undefined).length }
  // Discovery keeping the function that gave it the addresses would hold the last config replaced.
  t.ok(await until(() => alive() === 0, 10_000), `replaced configs still in memory: ${alive()} of ${replaced.length}`)
})

t.test('what was learned of an address is kept until discovery finds it, however long its lookups fail', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  let answer = failed as () => string[]
  fakeDns(t, () => answer())
  const options = `    passive: { consecutiveFailures: 1, baseEjection: 1h, maxEjection: 1h }
    retries: false`
  const yaml = (targets: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  svc:
    targets: [ ${targets} ]
${options}
routes:
  - { name: all, match: { path: /* }, upstream: svc }
`
  // 127.0.0.2: nothing listens there.
  const gw = await startGateway(yaml(`{ url: "http://127.0.0.1:${up.port}" }, { url: "http://127.0.0.2:${up.port}" }`))
  t.teardown(() => gw.close())
  t.same(new Set(await statuses(gw, 4)), new Set([200, 502]), 'both addresses tried')
  t.same(await statuses(gw, 4), [200, 200, 200, 200], '127.0.0.2 ejected')
  await gw.apply(await parseConfig(yaml(`{ url: "http://svc.test:${up.port}", resolve: dns, dnsInterval: 1s }`), 'test.yaml'))
  const svc = gw.gateway.runtime.upstreams.get('svc')!
  t.same(svc.targets.map(x => x.url), [`http://svc.test:${up.port}`], 'the name: no config had addresses for it')
  answer = () => ['127.0.0.1', '127.0.0.2']
  t.ok(await until(() => svc.targets.length === 2, 10_000), 'a later round finds both addresses')
  t.same(await statuses(gw, 6), [200, 200, 200, 200, 200, 200], '127.0.0.2 still ejected')
})
