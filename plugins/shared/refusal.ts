import type { PluginReply } from '../../src/index.ts'

const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * A refusal in the gateway's error format ({ error, message, requestId }). `close`: the request body
 * is left unread, so the connection cannot be reused.
 */
export function refusal (status: number, error: string, message: string, requestId: string, close = false): PluginReply {
  return {
    status,
    headers: close ? { 'content-type': JSON_TYPE, connection: 'close' } : { 'content-type': JSON_TYPE },
    body: JSON.stringify({ error, message, requestId })
  }
}
