import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.ts'
import { Runtime } from '../runtime/runtime.ts'
import type { GatewayServer } from '../server/gateway-server.ts'

export type BuildOptions = NonNullable<Parameters<typeof Runtime.build>[2]>

/** By gateway, what a config built for it waits on before going into service: see holdSwaps. */
const holds = new WeakMap<GatewayServer, () => Promise<boolean>>()

/**
 * From now on, a config built for `gateway` (see buildAndSwap) waits, built, for `word`: true puts it in
 * service, false releases it. A worker's, for the primary's commit or abort (see runWorker): a reload goes
 * into service on every worker or on none.
 */
export function holdSwaps (gateway: GatewayServer, word: () => Promise<boolean>): void {
  holds.set(gateway, word)
}

/**
 * Builds the complete runtime for `next` off to the side (routes, pipelines, pools, health checks)
 * and only then puts it in service. Throws, with the old runtime still serving, if the build
 * fails. The old runtime retires in the background once its in-flight requests are done.
 * `current` is asked once the build is done: false (a later config overtook it meanwhile, see
 * runWorker), the build is released instead. Resolves whether it was put in service.
 */
export async function buildAndSwap (gateway: GatewayServer, next: LoadedConfig, log: Logger, options: BuildOptions, current: () => boolean = () => true): Promise<boolean> {
  const runtime = await Runtime.build(next, log, { ...options, previous: gateway.runtime })
  const release = (why: string) => {
    log.info({ hash: next.hash }, `config ${why}: released unused`)
    runtime.dispose().catch((err: unknown) => { log.error({ err }, 'a config built but not put in service could not be released') })
    return false
  }
  if (!current()) return release('overtaken while it was built (a later one was sent)')
  const word = holds.get(gateway)
  if (word !== undefined && !await word()) return release('called off by the primary (not every worker could build it, or the gateway stops)')
  log.level = next.config.logging?.level ?? 'info'
  options.metrics?.configActive(next.hash)
  runtime.catchUp(gateway.runtime)
  // Settles once the replaced config is released: a failure there is logged, not left unhandled (which ends the process).
  gateway.swap(runtime).catch((err: unknown) => { log.error({ err }, 'the config a reload replaced could not be released') })
  return true
}
