import fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Runtime } from '../runtime/runtime.ts'
import { toMs } from '../config/duration.ts'
import type { GatewayConfig } from '../config/schema.ts'
import { GatewayError, sendError } from '../errors.ts'
import { requestId } from '../proxy/request-id.ts'

/**
 * The public listener. Fastify hosts it; every request is handed, unparsed and unbuffered, to the
 * current runtime, which can be swapped while requests are in flight.
 */
export class GatewayServer {
  readonly app: FastifyInstance
  #runtime: Runtime
  readonly #upgraded = new Set<Duplex>()

  constructor (runtime: Runtime, server: GatewayConfig['server']) {
    this.#runtime = runtime
    this.app = fastify({
      logger: false,
      keepAliveTimeout: server.keepAliveTimeout === undefined ? 72_000 : toMs(server.keepAliveTimeout),
      requestTimeout: 0,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      routerOptions: { maxParamLength: 65_535 },
      frameworkErrors: (_err, request, reply) => {
        reply.hijack()
        sendError(reply.raw, GatewayError.BAD_REQUEST, requestId(request.headers['x-request-id']))
      }
    })
    // Bodies stream to the upstream untouched: no parsing, no buffering.
    this.app.removeAllContentTypeParsers()
    this.app.addContentTypeParser('*', (_req, _payload, done) => { done(null) })
    this.app.all('*', (request, reply) => {
      reply.hijack()
      this.#runtime.handle(request.raw, reply.raw)
    })
    this.app.server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      this.#upgraded.add(socket)
      socket.once('close', () => this.#upgraded.delete(socket))
      this.#runtime.handleUpgrade(req, socket, head)
    })
  }

  get runtime (): Runtime { return this.#runtime }

  /** Puts `next` in service; the previous runtime is disposed once its requests are done. */
  async swap (next: Runtime): Promise<void> {
    const previous = this.#runtime
    this.#runtime = next
    await previous.dispose()
  }

  async listen (host: string, port: number): Promise<AddressInfo> {
    await this.app.listen({ host, port })
    return this.app.server.address() as AddressInfo
  }

  /**
   * Stops accepting, lets in-flight requests finish, and after `deadlineMs` cuts what is left
   * (including open WebSockets). Resolves when every connection is gone.
   */
  async close (deadlineMs: number): Promise<void> {
    const timer = setTimeout(() => {
      this.app.server.closeAllConnections()
      for (const s of this.#upgraded) s.destroy()
    }, deadlineMs)
    const closed = this.app.close()
    if (this.#upgraded.size > 0) await Promise.race([closed, new Promise(resolve => setTimeout(resolve, deadlineMs))])
    for (const s of this.#upgraded) s.destroy()
    await closed
    clearTimeout(timer)
    await this.#runtime.dispose()
  }
}
