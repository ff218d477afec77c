import { request } from 'undici'

/** The value of one series (`name{labels}` exactly as exposed) on an admin /metrics page, 0 when absent. */
export async function metricValue (adminUrl: string, series: string): Promise<number> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text()
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
