import type { PluginReply } from './contract.ts'

/**
 * The error a request body stream (GatewayRequest.pipeBodyThrough) fails with to refuse the request:
 * the client gets `reply` if no response has begun, and the upstream request is aborted.
 */
export class RequestRejected extends Error {
  readonly reply: PluginReply

  constructor (message: string, reply: PluginReply) {
    super(message)
    this.name = 'RequestRejected'
    this.reply = reply
  }
}
