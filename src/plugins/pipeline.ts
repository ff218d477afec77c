import type { Logger } from 'pino'
import type { GatewayRequest, GatewayResponse, PluginDefinition, PluginHandlers, PluginReply } from './contract.ts'

type Maybe<T> = T | Promise<T>

export interface RequestHook { readonly position: number, readonly run: (req: GatewayRequest) => Maybe<PluginReply | undefined | void> }
export interface ResponseHook { readonly position: number, readonly run: (res: GatewayResponse, req: GatewayRequest) => Maybe<void> }

/** A route's plugins, set up once at config load and ordered by priority (then name). */
export interface Pipeline {
  readonly steps: ReadonlyArray<{ readonly name: string, readonly priority: number }>
  /** In request order. */
  readonly requestHooks: readonly RequestHook[]
  /** In response order: reverse of the request order. */
  readonly responseHooks: readonly ResponseHook[]
  dispose (): Promise<void>
}

export async function buildPipeline (
  routeName: string,
  configs: Readonly<Record<string, unknown>>,
  plugins: ReadonlyMap<string, PluginDefinition>,
  log: Logger
): Promise<Pipeline> {
  const defs = ordered(configs, plugins)
  const handlers: PluginHandlers[] = []
  try {
    for (const def of defs) {
      handlers.push(await def.setup(configs[def.name] ?? {}, { routeName, log: log.child({ route: routeName, plugin: def.name }) }))
    }
  } catch (err) {
    await disposeAll(handlers)
    throw err
  }
  const requestHooks: RequestHook[] = []
  const responseHooks: ResponseHook[] = []
  // Bound once here, so that handlers may be class instances whose hooks use `this`.
  handlers.forEach((h, position) => {
    if (h.onRequest !== undefined) requestHooks.push({ position, run: h.onRequest.bind(h) })
    if (h.onResponse !== undefined) responseHooks.unshift({ position, run: h.onResponse.bind(h) })
  })
  return {
    steps: defs.map(d => ({ name: d.name, priority: d.priority })),
    requestHooks,
    responseHooks,
    dispose: () => disposeAll(handlers)
  }
}

/** A route's plugin order without running any setup (for `routes` and `explain`). */
export function describePipeline (configs: Readonly<Record<string, unknown>>, plugins: ReadonlyMap<string, PluginDefinition>): Pipeline {
  return { steps: ordered(configs, plugins).map(d => ({ name: d.name, priority: d.priority })), requestHooks: [], responseHooks: [], dispose: async () => {} }
}

function ordered (configs: Readonly<Record<string, unknown>>, plugins: ReadonlyMap<string, PluginDefinition>): PluginDefinition[] {
  return Object.keys(configs).map(name => plugins.get(name) as PluginDefinition)
    .sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name))
}

async function disposeAll (handlers: PluginHandlers[]): Promise<void> {
  await Promise.allSettled(handlers.map(h => h.dispose?.()))
}
