import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { startGateway, type TestGateway } from './gateway.ts'
import { startUpstream } from './upstream.ts'

export interface CatchAllOptions {
  /** More keys for the route, indented as route keys (4 spaces). */
  readonly route?: string
  /** A whole `server:` block, instead of the default loopback listener. */
  readonly server?: string
}

/** Config text for one upstream `up` at `url` and one route `all` matching every path. */
export function catchAllYaml (url: string, options: CatchAllOptions = {}): string {
  return `${options.server ?? ''}
upstreams:
  up: { targets: [ { url: "${url}" } ] }
routes:
  - name: all
    match: { path: /* }
    upstream: up
${options.route ?? ''}
`
}

/**
 * A real gateway with catchAllYaml(), in front of `upstream`: a URL, or a handler for a new test
 * upstream. Everything is closed in teardown.
 */
export async function catchAllGateway (t: Test, upstream: string | ((req: IncomingMessage, res: ServerResponse) => void),
  options: CatchAllOptions = {}): Promise<TestGateway> {
  let url = upstream
  if (typeof upstream !== 'string') {
    const up = await startUpstream(upstream)
    t.teardown(() => up.close())
    url = up.url
  }
  const gw = await startGateway(catchAllYaml(url as string, options))
  t.teardown(() => gw.close())
  return gw
}
