import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.ts'
import { Runtime } from '../runtime/runtime.ts'
import type { GatewayServer } from '../server/gateway-server.ts'

export type BuildOptions = NonNullable<Parameters<typeof Runtime.build>[2]>

/**
 * Builds the complete runtime for `next` off to the side (routes, pipelines, pools, health checks)
 * and only then puts it in service. Throws, with the old runtime still serving, if the build
 * fails. The old runtime retires in the background once its in-flight requests are done.
 */
export async function buildAndSwap (gateway: GatewayServer, next: LoadedConfig, log: Logger, options: BuildOptions): Promise<void> {
  const runtime = await Runtime.build(next, log, { ...options, previous: gateway.runtime })
  log.level = next.config.logging?.level ?? 'info'
  options.metrics?.configActive(next.hash)
  runtime.catchUp(gateway.runtime)
  // Settles once the replaced config is released: a failure there is logged, not left unhandled (which ends the process).
  gateway.swap(runtime).catch((err: unknown) => { log.error({ err }, 'the config a reload replaced could not be released') })
}
