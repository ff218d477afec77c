import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { configFile, startFromFile, waitFor } from '../reload/helpers.ts'

// Issue 13: GET /upstreams and portcullis_upstream_target_healthy speak of a target the same way:
// healthy means it takes traffic, and `down` says why not.

interface Target { url: string, healthy: boolean, down: string[], checksPassing: boolean }

t.test('an ejected target, one failing its checks and one with an open breaker: the same verdict in /upstreams and in the metric', async t => {
  const serve = (status: number, health: number) => startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    res.writeHead(req.url === '/health' ? health : status).end()
  })
  const [good, failing, sick] = await Promise.all([serve(200, 200), serve(502, 200), serve(200, 503)])
  t.teardown(() => Promise.all([good, failing, sick].map(u => u.close())))
  // Refusing connections: a breaker opens on the last target available only when it is down.
  const broken = { url: `http://127.0.0.1:${await deadPort()}` }
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  ejecting:
    targets: [ { url: "${good.url}" }, { url: "${failing.url}" } ]
    passive: { consecutiveFailures: 1, baseEjection: 1h, maxEjection: 1h }
  checked:
    targets: [ { url: "${sick.url}" } ]
    healthCheck: { path: /health, interval: 100ms, unhealthyAfter: 1 }
  breaking:
    targets: [ { url: "${broken.url}" } ]
    circuitBreaker: { minRequests: 1 }
routes:
  - { name: e, match: { path: /e }, upstream: ejecting }
  - { name: c, match: { path: /c }, upstream: checked }
  - { name: b, match: { path: /b }, upstream: breaking }
`)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await cf.remove() })
  const targets = async () => ((await (await request(`${gw.adminUrl}/upstreams`)).body.json()) as { upstreams: Array<{ targets: Target[] }> }).upstreams.flatMap(u => u.targets)
  const byUrl = async (url: string) => (await targets()).find(x => x.url === url)

  for (let i = 0; i < 4; i++) await (await request(`${gw.url}/e`)).body.dump()
  for (let i = 0; i < 3; i++) await (await request(`${gw.url}/b`)).body.dump()
  t.equal(await waitFor(async () => (await byUrl(sick.url))?.checksPassing === false ? true : undefined, 30_000), true, 'the checks found the sick target')

  t.match(await byUrl(good.url), { healthy: true, down: [], checksPassing: true })
  t.same((await byUrl(failing.url))?.down, ['ejected'], 'ejected: passing its checks, but not healthy')
  t.match(await byUrl(failing.url), { healthy: false, checksPassing: true })
  t.match(await byUrl(sick.url), { healthy: false, down: ['health-checks'], checksPassing: false })
  t.match(await byUrl(broken.url), { healthy: false, down: ['breaker-open'] })

  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  const gauge = (upstream: string, url: string) => new RegExp(`portcullis_upstream_target_healthy\\{upstream="${upstream}",target="${url}"\\} (\\d)`).exec(metrics)?.[1]
  t.same([gauge('ejecting', good.url), gauge('ejecting', failing.url), gauge('checked', sick.url), gauge('breaking', broken.url)], ['1', '0', '0', '0'], 'the metric agrees, target by target')
})

// A breaker's state is not the whole answer: open past halfOpenAfter, it takes the next request (its
// probe); half-open with that probe in flight, it takes none. `healthy` follows what the balancer does.
t.test('a breaker open past halfOpenAfter shows healthy; half-open with its probe in flight, not (breaker-half-open)', async t => {
  let fail = true
  let hold: (() => void) | undefined
  const target = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (fail) { res.writeHead(502).end(); return }
    hold = () => { if (!res.headersSent) res.writeHead(200).end('probe') }
  })
  // A breaker never opens on the last target available for answers (see Upstream.#mayTakeOut): a spare,
  // which smooth round-robin gives none of these few requests (weight 1 against 1000).
  const spare = await startUpstream((req: IncomingMessage, res: ServerResponse) => { req.resume(); res.writeHead(200).end('spare') })
  t.teardown(() => Promise.all([target.close(), spare.close()]))
  // halfOpenAfter: the checks made while the breaker is open, then while its probe is in flight, must
  // come before it passes (after it, a probe given up on no longer blocks): room for a loaded machine.
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  breaking:
    targets: [ { url: "${target.url}", weight: 1000 }, { url: "${spare.url}" } ]
    passive: false
    circuitBreaker: { minRequests: 1, halfOpenAfter: 1500ms }
routes:
  - { name: b, match: { path: /b }, upstream: breaking }
`)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { hold?.(); await gw.close(); await cf.remove() })
  const state = async () => ((await (await request(`${gw.adminUrl}/upstreams`)).body.json()) as { upstreams: Array<{ targets: Array<Target & { breaker: string }> }> }).upstreams[0]?.targets[0]
  const gauge = async () => new RegExp(`portcullis_upstream_target_healthy\\{upstream="breaking",target="${target.url}"\\} (\\d)`).exec(await (await request(`${gw.adminUrl}/metrics`)).body.text())?.[1]

  await (await request(`${gw.url}/b`)).body.dump()
  t.match(await state(), { breaker: 'open', healthy: false, down: ['breaker-open'] }, 'open: no traffic')
  t.equal(await gauge(), '0')
  const past = await waitFor(async () => { const s = await state(); return s?.healthy === true ? s : undefined }, 10_000)
  t.match(past, { breaker: 'open', healthy: true, down: [] }, 'open past halfOpenAfter: its next request is the probe')
  t.equal(await gauge(), '1')

  fail = false
  const probe = request(`${gw.url}/b`).then(r => r.body.text())
  t.ok(await waitFor(async () => hold === undefined ? undefined : true, 5_000), 'the probe reached the target')
  t.match(await state(), { breaker: 'half-open', healthy: false, down: ['breaker-half-open'] }, 'half-open, its probe in flight: no traffic')
  t.equal(await gauge(), '0')
  hold?.()
  t.equal(await probe, 'probe')
  t.match(await state(), { breaker: 'closed', healthy: true, down: [] })
})
