import { readFileSync, writeFileSync } from 'node:fs'
import { Document, parse, type YAMLMap } from 'yaml'
import { portcullisDashboard } from './dashboards/portcullis.ts'

// `npm run dashboards`: the JSON Grafana provisions, from the TypeScript definition, and the Prometheus Operator's
// copy of the alert rules (tests check both are fresh).
export const DASHBOARD_JSON = new URL('./dashboards/portcullis.json', import.meta.url)
export const dashboardText = (): string => JSON.stringify(portcullisDashboard(), null, 2) + '\n'

export const RULES_YAML = new URL('./alerts/portcullis.rules.yaml', import.meta.url)
export const PROMETHEUS_RULE_YAML = new URL('../deploy/kubernetes/portcullis-rules.yaml', import.meta.url)
export const prometheusRuleText = (): string => `# Generated from grafana/alerts/portcullis.rules.yaml by \`npm run dashboards\` (a test fails when it is stale):
# edit the rules there. The alert rules for the Prometheus Operator (docs/metrics.md#alerts):
#   kubectl apply -f deploy/kubernetes/portcullis-rules.yaml
# A Prometheus loads the PrometheusRules its ruleSelector and ruleNamespaceSelector pick: add the labels
# yours selects on (kube-prometheus-stack's default: release: <its Helm release name>, commented out
# below: uncomment it with yours) and apply it where it looks.
${prometheusRule().toString({ lineWidth: 0 })}`

function prometheusRule (): Document {
  const doc = new Document({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'portcullis', labels: { 'app.kubernetes.io/name': 'portcullis' } },
    spec: { groups: (parse(readFileSync(RULES_YAML, 'utf8')) as { groups: unknown[] }).groups }
  })
  ;(doc.getIn(['metadata', 'labels'], true) as YAMLMap).comment = ' release: <release name>'
  return doc
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) {
  writeFileSync(DASHBOARD_JSON, dashboardText())
  writeFileSync(PROMETHEUS_RULE_YAML, prometheusRuleText())
}
