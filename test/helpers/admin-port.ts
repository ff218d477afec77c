import type { Test } from 'tap'
import { rawRequest } from './raw-http.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

/**
 * A gateway with its admin listener (with or without admin.token) in front of one upstream, all
 * closed with the test; `raw` writes a raw request to the admin port (`Connection: close` added).
 */
export async function adminPort (t: Test, token?: string) {
  const a = await namedUpstream('a')
  t.teardown(() => a.close())
  const yaml = gatewayYaml({ a: [a.url] }, '  - { name: all, match: { path: "/*" }, upstream: a }')
  const cf = await configFile(token === undefined ? yaml : yaml.replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${token}"`))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await cf.remove() })
  const port = Number(new URL(gw.adminUrl as string).port)
  const raw = (lines: string[], body = '') => rawRequest(port, [...lines, 'Connection: close'], body)
  return {
    gw,
    port,
    raw,
    /** GET /config's lastReload: null until a reload was attempted. */
    lastReload: async () => (JSON.parse((await raw(['GET /config HTTP/1.1', 'Host: 127.0.0.1'])).body) as { lastReload: unknown }).lastReload
  }
}
