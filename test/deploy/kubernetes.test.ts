import t from 'tap'
import { readFileSync } from 'node:fs'
import { ConfigMap, Service } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { NetworkPolicy, type INetworkPolicyIngressRule } from 'kubernetes-models/networking.k8s.io/v1'
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import { parse, parseAllDocuments } from 'yaml'
import { PROMETHEUS_RULE_YAML, RULES_YAML, prometheusRuleText } from '../../grafana/emit.ts'
import { parseConfig } from '../../src/config/load.ts'
import { toMs } from '../../src/config/duration.ts'

const FILE = new URL('../../deploy/kubernetes/portcullis.yaml', import.meta.url)
const MODELS: Record<string, new (data: never) => { validate (): void }> = { ConfigMap, Service, Deployment, PodDisruptionBudget, PodMonitor, NetworkPolicy }
const docs = parseAllDocuments(readFileSync(FILE, 'utf8')).map(d => d.toJS() as { kind: string, metadata: { name: string }, [k: string]: unknown })

t.test('every manifest validates against the Kubernetes (and Prometheus Operator) OpenAPI models', async t => {
  t.same(docs.map(d => d.kind), ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'PodMonitor', 'NetworkPolicy'])
  for (const d of docs) {
    const Model = MODELS[d.kind]
    if (Model === undefined) { t.fail(`no model for ${d.kind}`); continue }
    t.doesNotThrow(() => new Model(d as never).validate(), `${d.kind} ${d.metadata.name}`)
  }
  // The models do catch mistakes: a probe port must be a name or number, not an object.
  const broken = structuredClone(docs[1]) as unknown as { spec: { template: { spec: { containers: Array<{ readinessProbe: { httpGet: { port: unknown } } }> } } } }
  ;(broken.spec.template.spec.containers[0] as { readinessProbe: { httpGet: { port: unknown } } }).readinessProbe.httpGet.port = { nope: 1 }
  t.throws(() => new Deployment(broken as never).validate(), 'an invalid Deployment is refused')
})

t.test('the ConfigMap holds a valid config whose admin listener serves the probes the Deployment uses', async t => {
  const text = (docs[0] as unknown as { data: Record<string, string> }).data['gateway.yaml'] as string
  const loaded = await parseConfig(text, 'gateway.yaml', { ADMIN_TOKEN: 'a-token-of-at-least-16-chars', ADMIN_READ_TOKEN: 'a-read-token-of-16-chars' })
  const deployment = new Deployment(docs[1] as never)
  const pod = deployment.spec?.template.spec
  const container = pod?.containers[0]
  // Prometheus scrapes with the secret key the gateway reads its read-only token from.
  const envKey = (name: string) => container?.env?.find(e => e.name === name)?.valueFrom?.secretKeyRef?.key
  const monitor = docs.find(d => d.kind === 'PodMonitor') as unknown as { spec: { podMetricsEndpoints: Array<{ authorization: { credentials: { name: string, key: string } } }> } }
  t.equal(envKey('ADMIN_READ_TOKEN'), monitor.spec.podMetricsEndpoints[0]?.authorization.credentials.key, 'Prometheus holds the read-only token')
  t.not(envKey('ADMIN_READ_TOKEN'), envKey('ADMIN_TOKEN'))
  t.equal(loaded.config.admin?.readToken, 'a-read-token-of-16-chars')
  const adminPort = container?.ports?.find(p => p.name === 'admin')?.containerPort
  t.equal(adminPort, loaded.config.admin?.listen.port, 'probes reach the admin listener')
  t.equal(loaded.config.admin?.listen.host, '0.0.0.0', 'bound where the kubelet can reach it')
  t.equal(container?.readinessProbe?.httpGet?.path, '/readyz')
  t.equal(container?.livenessProbe?.httpGet?.path, '/healthz')
  // The admin listener opens once the gateway listens: without a startup probe, liveness would restart a slow start after 30 s.
  const startup = container?.startupProbe
  t.match(startup?.httpGet, { path: '/healthz', port: 'admin' }, 'a startup probe on the admin listener')
  const startupS = (startup?.periodSeconds ?? 10) * (startup?.failureThreshold ?? 3)
  const pluginS = toMs(loaded.config.server.pluginTimeout ?? 30_000) / 1000
  t.ok(startupS >= 2 * pluginS, `a start may take ${startupS} s, twice server.pluginTimeout (${pluginS} s)`)
  t.ok((startup?.periodSeconds ?? 10) <= 5, 'checked often, so a pod starts taking traffic soon after it listens')
  t.equal(container?.ports?.find(p => p.name === 'http')?.containerPort, loaded.config.server.listen.port)
  const shutdownS = toMs(loaded.config.server.shutdownTimeout ?? 30_000) / 1000
  t.ok((pod?.terminationGracePeriodSeconds ?? 30) > shutdownS + 5, 'the grace period covers preStop and the drain')
  t.ok(container?.resources?.requests?.cpu !== undefined && container.resources.requests.memory !== undefined, 'resource requests set')
  t.same(container?.volumeMounts?.map(m => m.subPath), [undefined, undefined], 'directory mounts, so ConfigMap updates reach the file')
})

t.test('with a read-only root file system, the image\'s state file is on a writable volume (else every pod exits at start)', async t => {
  const stateFile = /^ENV PORTCULLIS_STATE_FILE=(\S+)$/m.exec(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'))?.[1]
  t.ok(stateFile?.startsWith('/'), 'the image names its state file')
  const pod = new Deployment(docs[1] as never).spec?.template.spec
  const container = pod?.containers[0]
  t.equal(container?.securityContext?.readOnlyRootFilesystem, true)
  const mount = container?.volumeMounts?.find(m => (stateFile as string).startsWith(m.mountPath + '/'))
  t.ok(mount !== undefined && mount.readOnly !== true, 'a writable mount holds it')
  t.ok(pod?.volumes?.find(v => v.name === mount?.name)?.emptyDir !== undefined, 'an emptyDir')
})

t.test('a NetworkPolicy opens the traffic port to all and the admin port only to a monitoring namespace (any pod could fill the admin connection limit and fail every probe)', async t => {
  const deployment = new Deployment(docs[1] as never).spec
  const ports = deployment?.template.spec?.containers[0]?.ports ?? []
  const raw = docs.find(d => d.kind === 'NetworkPolicy')
  t.ok(raw !== undefined, 'the manifest has a NetworkPolicy')
  const policy = new NetworkPolicy(raw as never).spec
  t.same(policy?.podSelector?.matchLabels, deployment?.selector.matchLabels, 'it selects the gateway pods')
  t.ok(policy?.policyTypes?.includes('Ingress'), 'it restricts ingress')
  // A rule without ports (or a port entry without port) covers every port; a named port is the container's.
  const covers = (rule: INetworkPolicyIngressRule, name: string) => {
    const port = ports.find(p => p.name === name)
    if (rule.ports === undefined || rule.ports.length === 0) return true
    return rule.ports.some(p => (p.protocol ?? 'TCP') === 'TCP' && (p.port === undefined || p.port === name ||
      (typeof p.port === 'number' && port !== undefined && p.port <= port.containerPort && port.containerPort <= (p.endPort ?? p.port))))
  }
  const rules = policy?.ingress ?? []
  t.ok(rules.some(r => covers(r, 'http') && (r.from === undefined || r.from.length === 0)), 'the traffic port is open to every source')
  const admin = rules.filter(r => covers(r, 'admin'))
  t.ok(admin.length > 0, 'Prometheus can reach the admin port')
  for (const rule of admin) {
    t.ok(rule.from !== undefined && rule.from.length > 0, 'the admin port is never open to every source')
    for (const peer of rule.from ?? []) {
      t.equal(peer.ipBlock, undefined, 'no address block')
      t.ok(Object.keys(peer.namespaceSelector?.matchLabels ?? {}).length > 0, 'a namespace picked by its labels')
    }
  }
})

t.test('the PrometheusRule holds the alert rules of grafana/alerts/, for the job the PodMonitor scrapes as', async t => {
  t.equal(readFileSync(PROMETHEUS_RULE_YAML, 'utf8'), prometheusRuleText(), 'deploy/kubernetes/portcullis-rules.yaml is fresh (npm run dashboards)')
  const manifest = parseAllDocuments(readFileSync(PROMETHEUS_RULE_YAML, 'utf8')).map(d => d.toJS() as { kind: string, spec: { groups: unknown[] } })
  t.same(manifest.map(d => d.kind), ['PrometheusRule'])
  const rule = manifest[0] as { spec: { groups: Array<{ rules: Array<{ expr: string }> }> } }
  t.doesNotThrow(() => new PrometheusRule(rule as never).validate(), 'validates against the Prometheus Operator model')
  t.same(rule.spec.groups, (parse(readFileSync(RULES_YAML, 'utf8')) as { groups: unknown[] }).groups, 'the groups of the rules file')
  // The Operator names a PodMonitor's job <namespace>/<name>: the `up` alerts must match it.
  const monitor = docs.find(d => d.kind === 'PodMonitor')
  const jobs = [...new Set(rule.spec.groups.flatMap(g => g.rules).flatMap(r => [...r.expr.matchAll(/job=~"([^"]+)"/g)].map(m => m[1] as string)))]
  t.ok(jobs.length > 0, 'rules select the job')
  for (const job of jobs) t.match(`default/${monitor?.metadata.name}`, new RegExp(`^(?:${job})$`), `job=~"${job}" matches the PodMonitor's job`)
})

t.test('the PodMonitor and the PrometheusRule show, commented, the release label kube-prometheus-stack selects them by', async t => {
  // Its default podMonitorSelector and ruleSelector are `release: <release name>`: without it, nothing is scraped.
  for (const [file, kind, Model] of [[FILE, 'PodMonitor', PodMonitor], [PROMETHEUS_RULE_YAML, 'PrometheusRule', PrometheusRule]] as const) {
    const text = readFileSync(file, 'utf8').replace(/^(\s+)# (release: )<release name>$/m, '$1$2my-release')
    const object = parseAllDocuments(text).map(d => d.toJS() as { kind: string, metadata: { labels: Record<string, string> } }).find(d => d.kind === kind)
    t.same(object?.metadata.labels, { 'app.kubernetes.io/name': 'portcullis', release: 'my-release' }, `${kind}: uncommented, a label of its own`)
    t.doesNotThrow(() => new Model(object as never).validate(), `${kind} validates with it`)
  }
})
