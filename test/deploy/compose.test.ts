import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { toMs } from '../../src/config/duration.ts'

// Docker cannot run here: these check what the stack is made of, with the real config loader and promtool.
const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

interface Service { image?: string, build?: string, environment?: Record<string, string>, volumes?: string[], ports?: string[], command?: string[], entrypoint?: string[] }
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> }

t.test('compose.yaml: redis, two gateway replicas on one config, demo services, Prometheus and Grafana', async t => {
  t.same(Object.keys(compose.services).sort(), ['demo-services', 'gateway-1', 'gateway-2', 'grafana', 'prometheus', 'redis'])
  const [g1, g2] = [compose.services['gateway-1'], compose.services['gateway-2']]
  t.same(g1?.volumes, g2?.volumes, 'the replicas share the config')
  t.not(g1?.ports?.[0], g2?.ports?.[0], 'on different host ports')
  for (const [name, s] of Object.entries(compose.services)) {
    for (const v of s.volumes ?? []) t.ok(existsSync(join(ROOT, v.split(':')[0] as string)), `${name}: ${v.split(':')[0]} exists`)
    // Node as PID 1 ignores a signal it has no handler for (the demo services have none).
    if (s.build !== undefined) t.equal((s as { init?: boolean }).init, true, `${name}: runs under an init`)
  }
})

/**
 * What a replica's entrypoint gives its process: the environment variables ADMIN_TOKEN and ADMIN_READ_TOKEN and the
 * arguments, run with sh as compose would (`$$` is compose's `$`), the mount at /etc/portcullis
 * pointed at the directory it mounts, the CLI replaced by a script printing what it was given.
 */
async function replicaProcess (service: Service): Promise<{ token: string, readToken: string, args: string[] }> {
  const [sh, flag, line, ...rest] = service.entrypoint ?? []
  const mount = service.volumes?.find(v => v.split(':')[1] === '/etc/portcullis')?.split(':')[0] ?? ''
  const script = (line ?? '').replaceAll('$$', '$').replaceAll('/etc/portcullis/', `${join(ROOT, mount)}/`)
    .replace('node dist/src/cli/main.js', `node -e "process.stdout.write(JSON.stringify({ token: process.env.ADMIN_TOKEN, readToken: process.env.ADMIN_READ_TOKEN, args: process.argv.slice(1) }))"`)
  const { stdout } = await run(sh as string, [flag as string, script, ...rest, ...service.command ?? []], { env: { PATH: process.env.PATH } })
  return JSON.parse(stdout) as { token: string, readToken: string, args: string[] }
}

t.test('the replicas\' config is valid with the environment compose gives it, and Prometheus scrapes with its read-only token', async t => {
  const replica = await replicaProcess(compose.services['gateway-1'] as Service)
  t.same(replica.args, ['start', '-c', '/etc/portcullis/gateway.yaml'], 'the CLI gets the command')
  t.equal(replica.token, read('deploy/compose/admin-token').trim(), 'ADMIN_TOKEN comes from deploy/compose/admin-token')
  // Prometheus reads the file compose mounts at its credentials_file: one place to change the token.
  const credentials = /credentials_file: (\S+)/.exec(read('deploy/compose/prometheus.yml'))?.[1]
  const mounted = compose.services.prometheus?.volumes?.find(v => v.split(':')[1] === credentials)?.split(':')[0] ?? ''
  const readToken = read(mounted).trim()
  t.equal(replica.readToken, readToken, 'ADMIN_READ_TOKEN comes from the file Prometheus scrapes with')
  t.not(readToken, replica.token, 'Prometheus holds no token that can reload or purge')
  const env = { ...compose.services['gateway-1']?.environment, ADMIN_TOKEN: replica.token, ADMIN_READ_TOKEN: replica.readToken }
  const loaded = await parseConfig(read('deploy/compose/gateway.yaml'), 'gateway.yaml', env)
  t.equal(loaded.config.admin?.token, replica.token)
  t.equal(loaded.config.admin?.readToken, readToken, 'the token Prometheus scrapes with')
  t.equal(loaded.config.stores?.shared?.type, 'redis')
  const storesUsed = loaded.config.routes.flatMap(r => Object.values(r.plugins ?? {}).map(p => (p as { store?: string }).store))
  t.ok(storesUsed.includes('shared'), 'the routes use the Redis store (the replicas share state through it)')
  // The replicas are reached as localhost:8080 and localhost:8081: a Host in the key would keep their entries apart.
  const cached = loaded.config.routes.filter(r => r.plugins?.cache !== undefined).map(r => r.plugins?.cache as { store?: string, key?: { host?: boolean } })
  t.ok(cached.length > 0 && cached.every(c => c.store === 'shared' && c.key?.host === false), 'cached in Redis, under one key for both replicas')
  t.equal(loaded.config.admin?.listen.port, 9901, 'the port Prometheus scrapes')
  // The last available target is never ejected: without a health check, a lone dead one reads healthy and no target alert fires.
  for (const [name, upstream] of Object.entries(loaded.config.upstreams)) t.ok(upstream.healthCheck !== undefined, `upstream ${name} has a healthCheck`)
  for (const name of ['gateway-1', 'gateway-2']) {
    const grace = (compose.services[name] as { stop_grace_period?: string }).stop_grace_period ?? '10s'
    t.ok(toMs(grace) > toMs(loaded.config.server.shutdownTimeout ?? 30_000), `${name}: stop_grace_period ${grace} is longer than the drain (shutdownTimeout)`)
  }
})

t.test('promtool check config passes for the stack\'s Prometheus, its rule files included', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-prom-'))
  // The container paths, pointed at the files compose mounts there.
  const config = read('deploy/compose/prometheus.yml')
    .replace('/etc/prometheus/rules/', join(ROOT, 'grafana/alerts/'))
    .replace('/etc/prometheus/read-token', join(ROOT, 'deploy/compose/read-token'))
  writeFileSync(join(dir, 'prometheus.yml'), config)
  const { stdout } = await run('promtool', ['check', 'config', join(dir, 'prometheus.yml')])
  t.match(stdout, /SUCCESS: 1 rule files found/)
  // Every rule of the file: the count read from it, not written here (it went stale when alerts were added).
  const rules = (parse(read('grafana/alerts/portcullis.rules.yaml')) as { groups: Array<{ rules: unknown[] }> }).groups.reduce((n, g) => n + g.rules.length, 0)
  t.ok(rules >= 14, `${rules} rules in the file`)
  t.match(stdout, `SUCCESS: ${rules} rules found`)
})

t.test('Prometheus stores exemplars (the latency buckets\' trace ids), and its command still reads the mounted config', async t => {
  const prometheus = compose.services.prometheus as Service
  const flag = (name: string) => prometheus.command?.find(a => a.startsWith(`--${name}=`))?.slice(name.length + 3)
  t.ok(flag('enable-feature')?.split(',').includes('exemplar-storage'), '--enable-feature=exemplar-storage')
  // A command replaces the image's default arguments: the config and storage paths must be given again.
  t.equal(flag('config.file'), prometheus.volumes?.find(v => v.startsWith('./deploy/compose/prometheus.yml:'))?.split(':')[1], 'the config file compose mounts')
  t.equal(flag('storage.tsdb.path'), '/prometheus', 'the image\'s data volume')
})

t.test('Grafana provisioning: the Prometheus data source and the dashboard folder compose mounts', async t => {
  const ds = parse(read('grafana/provisioning/datasources/prometheus.yaml')) as { datasources: Array<{ type: string, url: string }> }
  t.match(ds.datasources, [{ type: 'prometheus', url: 'http://prometheus:9090' }])
  const dash = parse(read('grafana/provisioning/dashboards/portcullis.yaml')) as { providers: Array<{ options: { path: string } }> }
  const mount = compose.services.grafana?.volumes?.find(v => v.startsWith('./grafana/dashboards:'))
  t.equal(mount?.split(':')[1], dash.providers[0]?.options.path, 'the provider reads where the dashboards are mounted')
})

t.test('Grafana draws the exemplars Prometheus stores: the request latency panel asks for them (once), and no trace link without a tracing backend', async t => {
  const dashboard = JSON.parse(read('grafana/dashboards/portcullis.json')) as { panels: Array<{ title?: string, targets?: Array<{ expr: string, exemplar?: boolean }> }> }
  const asking = dashboard.panels.flatMap(p => (p.targets ?? []).filter(q => q.exemplar === true).map(q => ({ title: p.title, expr: q.expr })))
  // Only portcullis_http_request_duration_seconds carries exemplars; each query asking would draw them again.
  t.match(asking, [{ title: /^Request latency by route/, expr: /portcullis_http_request_duration_seconds_bucket\{/ }])
  t.equal(asking.length, 1)
  const ds = parse(read('grafana/provisioning/datasources/prometheus.yaml')) as { datasources: Array<{ jsonData?: { exemplarTraceIdDestinations?: unknown } }> }
  t.same(Object.keys(compose.services).filter(s => /tempo|jaeger|zipkin|otel/.test(s)), [], 'the stack runs no tracing backend')
  t.equal(ds.datasources[0]?.jsonData?.exemplarTraceIdDestinations, undefined, 'so the trace ids link nowhere')
})
