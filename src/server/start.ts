import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import type { LoadedConfig } from '../config/load.ts'
import { toMs } from '../config/duration.ts'
import { Runtime } from '../runtime/runtime.ts'
import { GatewayServer } from './gateway-server.ts'
import { createAdminServer } from './admin-server.ts'
import { Metrics } from '../metrics/metrics.ts'

/** A running Portcullis: the gateway listener and the admin listener. */
export interface Portcullis {
  readonly gateway: GatewayServer
  readonly admin: FastifyInstance | undefined
  /** Where the gateway listens, e.g. http://127.0.0.1:8080. */
  readonly url: string
  readonly adminUrl: string | undefined
  readonly metrics: Metrics
  /** Graceful stop: stop accepting, drain within server.shutdownTimeout, release everything. */
  close (): Promise<void>
}

const url = (a: AddressInfo) => `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`

export async function startPortcullis (loaded: LoadedConfig, log: Logger, metrics = new Metrics()): Promise<Portcullis> {
  const { server, admin: adminConfig } = loaded.config
  const runtime = await Runtime.build(loaded, log)
  const gateway = new GatewayServer(runtime, server)
  const state = { ready: false, metrics }
  const admin = adminConfig === undefined ? undefined : createAdminServer(state)
  try {
    const address = await gateway.listen(server.listen.host, server.listen.port)
    const adminAddress = admin === undefined ? undefined : (await admin.listen({ host: adminConfig!.listen.host, port: adminConfig!.listen.port }), admin.server.address() as AddressInfo)
    state.ready = true
    const result = {
      gateway,
      admin,
      url: url(address),
      adminUrl: adminAddress === undefined ? undefined : url(adminAddress),
      metrics,
      close: async () => {
        state.ready = false
        const deadline = server.shutdownTimeout === undefined ? 30_000 : toMs(server.shutdownTimeout)
        log.info({ deadlineMs: deadline, inFlight: gateway.runtime.inFlight }, 'shutting down')
        await gateway.close(deadline)
        await admin?.close()
        log.info('stopped')
      }
    }
    log.info({ url: result.url, admin: result.adminUrl, routes: runtime.routes.length }, 'gateway listening')
    return result
  } catch (err) {
    await Promise.allSettled([gateway.close(0), admin?.close()])
    throw err
  }
}
