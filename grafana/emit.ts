import { writeFileSync } from 'node:fs'
import { portcullisDashboard } from './dashboards/portcullis.ts'

// `npm run dashboards`: the JSON Grafana provisions, from the TypeScript definition (a test checks it is fresh).
export const DASHBOARD_JSON = new URL('./dashboards/portcullis.json', import.meta.url)
export const dashboardText = (): string => JSON.stringify(portcullisDashboard(), null, 2) + '\n'

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) writeFileSync(DASHBOARD_JSON, dashboardText())
