import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard'

/** A dashboard expression as Grafana sends it with every variable at "All", `$__rate_interval` and `$__interval` as given. */
export const fill = (expr: string, rateInterval: string, interval = rateInterval) => expr.replaceAll('$__rate_interval', rateInterval)
  .replaceAll('$__interval', interval)
  .replaceAll('$instance', '.*').replaceAll('$route', '.*').replaceAll('$upstream', '.*')
  // A variable's label_values(metric, label) as an instant query.
  .replace(/^label_values\((.*), (\w+)\)$/, 'group by ($2) ($1)')

/** The expressions of the panel titled `title`. */
export const panelExpressions = (d: Dashboard, title: string) =>
  ((d.panels ?? []) as Array<{ title?: string, targets?: Array<{ expr?: string }> }>).find(p => p.title === title)?.targets?.map(t => t.expr ?? '') ?? []
