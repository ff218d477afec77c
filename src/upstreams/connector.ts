import type { Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { buildConnector } from 'undici'

/**
 * undici's connect timeout runs on its coarse ticker and can fire a second late; this one is a
 * plain timer, armed once per new connection (not per request), so `timeouts.connect` holds.
 */
export function connectorWithTimeout (timeoutMs: number, tls?: ConnectionOptions): buildConnector.connector {
  // TLS options apply to https:// targets only (undici picks tls.connect by the origin's protocol).
  const connect = buildConnector({ ...tls, timeout: 0 } as buildConnector.BuildOptions)
  return (options, callback) => {
    const timer = setTimeout(() => {
      const err = new Error(`Connect Timeout Error (attempted address: ${options.hostname}:${options.port}, timeout: ${timeoutMs}ms)`)
      socket.destroy(Object.assign(err, { code: 'UND_ERR_CONNECT_TIMEOUT' }))
    }, timeoutMs)
    const socket = connect(options, (...args) => { clearTimeout(timer); callback(...args) }) as unknown as Socket
  }
}
