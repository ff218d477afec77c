import type { Test } from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startGateway, type TestGateway } from './gateway.ts'
import { startUpstream } from './upstream.ts'

/** A gateway logging headers (`logging.headers`) in front of an upstream answering with `handler`, both closed with the test. */
export async function headersGateway (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestGateway> {
  const up = await startUpstream(handler)
  t.teardown(() => up.close())
  const gw = await startGateway(`logging: { headers: true }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return gw
}
