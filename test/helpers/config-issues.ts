import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'

/** Every issue of an invalid config as `file:line:col path: message`; fails the test if it is valid. */
export async function issues (t: Test, text: string, env: NodeJS.ProcessEnv = {}, file = 'gw.yaml'): Promise<string[]> {
  try {
    await parseConfig(text, file, env)
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue)
    throw err
  }
  t.fail('the config was accepted')
  return []
}

/** A config's text up to the plugins of its one route `r` (line 10 is the first plugin's, at 6 spaces). */
export const ONE_ROUTE_PLUGINS = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
`
