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

interface Service { image?: string, build?: string, environment?: Record<string, string>, volumes?: string[], ports?: string[], command?: string[] }
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> }

t.test('compose.yaml: redis, two gateway replicas on one config, demo services, Prometheus and Grafana', async t => {
  t.same(Object.keys(compose.services).sort(), ['demo-services', 'gateway-1', 'gateway-2', 'grafana', 'prometheus', 'redis'])
  const [g1, g2] = [compose.services['gateway-1'], compose.services['gateway-2']]
  t.same(g1?.volumes, g2?.volumes, 'the replicas share the config')
  t.not(g1?.ports?.[0], g2?.ports?.[0], 'on different host ports')
  for (const [name, s] of Object.entries(compose.services)) {
    for (const v of s.volumes ?? []) t.ok(existsSync(join(ROOT, v.split(':')[0] as string)), `${name}: ${v.split(':')[0]} exists`)
  }
})

t.test('the replicas\' config is valid with the environment compose gives it, and Prometheus uses the same admin token', async t => {
  const env = compose.services['gateway-1']?.environment ?? {}
  const loaded = await parseConfig(read('deploy/compose/gateway.yaml'), 'gateway.yaml', env)
  t.equal(loaded.config.admin?.token, read('deploy/compose/admin-token').trim(), 'the token Prometheus scrapes with')
  t.equal(loaded.config.stores?.shared?.type, 'redis')
  t.equal(loaded.config.admin?.listen.port, 9901, 'the port Prometheus scrapes')
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
    .replace('/etc/prometheus/admin-token', join(ROOT, 'deploy/compose/admin-token'))
  writeFileSync(join(dir, 'prometheus.yml'), config)
  const { stdout } = await run('promtool', ['check', 'config', join(dir, 'prometheus.yml')])
  t.match(stdout, /SUCCESS: 1 rule files found/)
  t.match(stdout, /SUCCESS: 11 rules found/)
})

t.test('Grafana provisioning: the Prometheus data source and the dashboard folder compose mounts', async t => {
  const ds = parse(read('grafana/provisioning/datasources/prometheus.yaml')) as { datasources: Array<{ type: string, url: string }> }
  t.match(ds.datasources, [{ type: 'prometheus', url: 'http://prometheus:9090' }])
  const dash = parse(read('grafana/provisioning/dashboards/portcullis.yaml')) as { providers: Array<{ options: { path: string } }> }
  const mount = compose.services.grafana?.volumes?.find(v => v.startsWith('./grafana/dashboards:'))
  t.equal(mount?.split(':')[1], dash.providers[0]?.options.path, 'the provider reads where the dashboards are mounted')
})
