import { toMs } from '../config/duration.ts'
import type { GatewayConfig } from '../config/schema.ts'

/** server.clientTimeouts in ms, defaults filled in (nginx's are 60s each; headers is shorter here, against slowloris). */
const DEFAULT_CLIENT_TIMEOUTS = { headers: 30_000, body: 60_000, send: 60_000 }

/** minBodyRate: bytes per second (0: none). */
export function clientTimeouts (server: GatewayConfig['server']): { headers: number, body: number, send: number, minBodyRate: number } {
  const c = server.clientTimeouts ?? {}
  return {
    headers: c.headers === undefined ? DEFAULT_CLIENT_TIMEOUTS.headers : toMs(c.headers),
    body: c.body === undefined ? DEFAULT_CLIENT_TIMEOUTS.body : toMs(c.body),
    send: c.send === undefined ? DEFAULT_CLIENT_TIMEOUTS.send : toMs(c.send),
    minBodyRate: c.minBodyRate ?? 0
  }
}
