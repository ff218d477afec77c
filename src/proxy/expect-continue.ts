import type { ServerResponse } from 'node:http'

const PENDING = Symbol('continue pending')
type Held = ServerResponse & { [PENDING]?: boolean }

/**
 * The client sent `Expect: 100-continue` and waits for a 100 before its body (RFC 9110 10.1.1):
 * sent by sendContinue when the gateway wants the body, not by Node before any plugin has run.
 * A request answered before (a 401, a 413) gets its final status alone: the client sends no body.
 */
export function holdContinue (res: ServerResponse): void {
  (res as Held)[PENDING] = true
}

/** Sends the 100 Continue the client waits for, if it waits: when the gateway starts reading the body. */
export function sendContinue (res: ServerResponse): void {
  if ((res as Held)[PENDING] !== true) return
  (res as Held)[PENDING] = false
  res.writeContinue()
}
