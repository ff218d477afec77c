import t from 'tap'
import { request } from 'undici'
import { configFile, gatewayYaml, startFromFile, waitFor } from '../reload/helpers.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

const BODY = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) })

/** The value of one sample in a Prometheus text exposition, or undefined when absent. */
function sample (text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${name}{${labels}} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

/** The samples of `text` whose labels name `route`. */
const ofRoute = (text: string, route: string) => text.split('\n').filter(l => l.includes(`route="${route}"`))

t.test('a reload that renames a route: the old name\'s series leave /metrics, the kept route\'s counters go on', async t => {
  const up = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', 'content-length': String(Buffer.byteLength(BODY)) }).end(BODY)
  })
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove() })
  // The renamed route carries plugins with per-route metrics, compress's kept-bytes gauge among them.
  const yaml = (name: string) => gatewayYaml({ u: [up.url] }, `  - { name: kept, match: { path: /kept }, upstream: u }
  - name: ${name}
    match: { path: /items }
    upstream: u
    plugins: { cache: {}, compress: { keepEncoded: 1MiB }, rate-limit: { limits: [ { name: w, requests: 1000, window: 1m } ] } }`)
  await cf.write(yaml('k0'))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()
  const traffic = async () => {
    await (await request(`${gw.url}/kept`)).body.dump()
    // A miss, then hits: from the third reply on compress keeps an encoded copy.
    for (let i = 0; i < 4; i++) await (await request(`${gw.url}/items`, { headers: { 'accept-encoding': 'gzip' } })).body.dump()
  }

  await traffic()
  const before = await metrics()
  t.ok((sample(before, 'portcullis_compress_kept_bytes', 'route="k0"') as number) > 0, 'compress keeps bytes for k0')
  t.ok(ofRoute(before, 'k0').length > 30, 'k0 has request and plugin series')
  const perRoute = ofRoute(before, 'k0').length

  const retired = []
  for (let i = 1; i <= 3; i++) {
    retired.push(gw.gateway.runtime)
    await cf.write(yaml(`k${i}`))
    t.equal((await gw.reloader.reload('admin')).result, 'success')
    await traffic()
  }
  // The retired runtimes are done: nothing of theirs comes back.
  await Promise.all(retired.map(r => r.dispose()))
  const after = await metrics()
  for (const gone of ['k0', 'k1', 'k2']) t.same(ofRoute(after, gone), [], `no series of ${gone}, renamed away`)
  t.equal(ofRoute(after, 'k3').length, perRoute, 'the route in service has as many series as k0 had')
  t.ok((sample(after, 'portcullis_compress_kept_bytes', 'route="k3"') as number) > 0, 'and its kept bytes')
  t.equal(sample(after, 'portcullis_http_requests_total', 'route="kept",method="GET",status="200"'), 4, 'the kept route counts on across reloads')
  t.equal(sample(after, 'portcullis_http_request_duration_seconds_count', 'route="kept"'), 4)
})

t.test('a request of the renamed route still in flight at the reload: its series leave once the old config is done', async t => {
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const up = await startUpstream((req, res) => { req.resume(); void held.then(() => res.writeHead(200).end('late')) })
  const cf = await configFile('')
  t.teardown(async () => { release(); await up.close(); await cf.remove() })
  const yaml = (name: string) => gatewayYaml({ u: [up.url] }, `  - { name: ${name}, match: { path: /slow }, upstream: u }`)
  await cf.write(yaml('old'))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const answer = request(`${gw.url}/slow`)
  await until(() => gw.gateway.runtime.inFlight === 1)
  const previous = gw.gateway.runtime
  await cf.write(yaml('new'))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  release()
  t.equal(await (await answer).body.text(), 'late', 'the old config answers it')
  await previous.dispose()
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.same(ofRoute(text, 'old'), [], 'counted after the reload, then removed with the old config')
})

t.test('a reload that renames an upstream: the old name\'s series leave /metrics too', async t => {
  const up = await startUpstream()
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove() })
  const yaml = (name: string) => gatewayYaml({ [name]: [up.url] }, `  - { name: r, match: { path: /* }, upstream: ${name} }`)
  await cf.write(yaml('u0'))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()
  const ofUpstream = (text: string, name: string) => text.split('\n').filter(l => l.includes(`upstream="${name}"`))
  await (await request(`${gw.url}/a`)).body.dump()
  t.ok(ofUpstream(await metrics(), 'u0').some(l => l.startsWith('portcullis_upstream_response_duration_seconds_count')), 'u0 has its upstream series')
  const retired = gw.gateway.runtime
  await cf.write(yaml('u1'))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  await (await request(`${gw.url}/a`)).body.dump()
  await retired.dispose()
  const after = await metrics()
  t.same(ofUpstream(after, 'u0'), [], 'no series of u0, renamed away')
  t.ok(ofUpstream(after, 'u1').some(l => l.startsWith('portcullis_upstream_response_duration_seconds_count')), 'u1 has its own')
})

t.test('a reload that removes a target from a kept upstream: its ejection series leaves /metrics, a kept target\'s stays', async t => {
  const up = await startUpstream()
  const [kept, removed] = [`http://127.0.0.1:${await deadPort()}`, `http://127.0.0.1:${await deadPort(true)}`]
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove() })
  // maxEjectionPercent: 100, so that both dead targets of three are ejected (the default allows one).
  const yaml = (targets: string[]) => gatewayYaml({}, '  - { name: r, match: { path: /* }, upstream: u }').replace('upstreams:\n', `upstreams:
  u: { targets: [ ${targets.map(url => `{ url: "${url}" }`).join(', ')} ], passive: { consecutiveFailures: 1, baseEjection: 1m, maxEjectionPercent: 100 } }
`)
  await cf.write(yaml([up.url, kept, removed]))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()
  const ejections = (text: string) => text.split('\n').filter(l => l.startsWith('portcullis_upstream_ejections_total{')).sort()
  // Every target's series is there from the start, at 0.
  const series = (url: string, n = 1) => `portcullis_upstream_ejections_total{upstream="u",target="${url}"} ${n}`
  t.ok(await waitFor(async () => {
    await (await request(`${gw.url}/a`)).body.dump()
    return ejections(await metrics()).filter(l => l.endsWith(' 1')).length === 2 ? true : undefined
  }), 'both dead targets ejected')
  t.same(ejections(await metrics()), [series(up.url, 0), series(kept), series(removed)].sort())
  const retired = gw.gateway.runtime
  await cf.write(yaml([up.url, kept]))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  t.same(ejections(await metrics()), [series(up.url, 0), series(kept)].sort(), 'the removed target\'s series is gone at the reload')
  await retired.dispose()
  t.same(ejections(await metrics()), [series(up.url, 0), series(kept)].sort(), 'and stays gone once the old config is done')
})
