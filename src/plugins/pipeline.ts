import type { Logger } from 'pino'
import type { LogLimiter } from '../logging/log-limiter.ts'
import type { GatewayRequest, GatewayResponse, PluginDefinition, PluginHandlers, PluginReply, PluginSetupContext, UpstreamTarget } from './contract.ts'
import { setupContext, type PluginServices } from './context.ts'
import { followConsumer } from './identity.ts'
import { byRunOrder, frozenConfig, type PluginUse } from './effective.ts'
import { disposeWithin, LATE, within } from './deadline.ts'
import { PluginSetupError } from './setup-error.ts'
import { describeThrown, loggedThrown, logThrown, PluginHookFailure } from './thrown.ts'

type Maybe<T> = T | Promise<T>

export interface RequestHook { readonly position: number, readonly run: (req: GatewayRequest) => Maybe<PluginReply | undefined | void> }
export interface ResponseHook { readonly position: number, readonly run: (res: GatewayResponse, req: GatewayRequest) => Maybe<void> }

/** One plugin of a route, as `routes`, `explain` and GET /routes show it. */
export interface PipelineStep { readonly name: string, readonly priority: number, readonly source: PluginUse['source'] }

/** A route's plugins, set up once at config load and ordered by priority (then name). */
export interface Pipeline {
  readonly steps: readonly PipelineStep[]
  /** In request order. */
  readonly requestHooks: readonly RequestHook[]
  /** In response order: reverse of the request order. */
  readonly responseHooks: readonly ResponseHook[]
  /** The plugins' observers (PluginHandlers), each chained into one call; undefined when no plugin has one. */
  readonly onUpstreamTry: ((req: GatewayRequest, target: UpstreamTarget, attempt: number) => void) | undefined
  readonly onUpstreamTryEnd: ((req: GatewayRequest, status: number | undefined, error: Error | undefined) => void) | undefined
  readonly onFinished: ((req: GatewayRequest, status: number, cut: string | undefined) => void) | undefined
  /** Request headers the plugins hold credentials in (ctx.redactHeaders), lower-cased: the runtime redacts those of every route on each. */
  readonly redactedHeaders: readonly string[]
  /** How long an async onRequest or onResponse may take (server.pluginTimeout), ms; 0 (describePipeline's): it runs no hook. */
  readonly hookTimeoutMs: number
  dispose (): Promise<void>
}

export async function buildPipeline (
  routeName: string,
  routePath: string,
  routeParams: readonly string[],
  routeMethods: readonly string[] | undefined,
  uses: readonly PluginUse[],
  plugins: ReadonlyMap<string, PluginDefinition>,
  services: PluginServices,
  log: Logger,
  timeoutMs: number,
  limits: LogLimiter
): Promise<Pipeline> {
  const steps = ordered(uses, plugins)
  const handlers: PluginHandlers[] = []
  const redacted = new Set<string>()
  const disposeAll = () => disposeWithin(handlers.map((h, i) => ({ plugin: (steps[i] as Step).def.name, dispose: () => h.dispose?.() })), timeoutMs, log)
  try {
    for (const { def, use } of steps) {
      const ctx = setupContext(services, def.name, routeName, routePath, routeParams, log.child({ route: routeName, plugin: def.name }), redacted, routeMethods, timeoutMs)
      handlers.push(await setUp(def, frozenConfig(use.config ?? {}), ctx, timeoutMs))
    }
  } catch (err) {
    await disposeAll()
    throw err
  }
  const requestHooks: RequestHook[] = []
  const responseHooks: ResponseHook[] = []
  // Bound once here, so that handlers may be class instances whose hooks use `this`.
  let before: string | undefined
  handlers.forEach((h, position) => {
    const plugin = (steps[position] as Step).def.name
    if (h.onRequest !== undefined) {
      requestHooks.push({ position, run: requestHook(h.onRequest.bind(h), before) })
      before = plugin
    }
    if (h.onResponse !== undefined) responseHooks.unshift({ position, run: h.onResponse.bind(h) })
  })
  // What the last hook set reaches the upstream too.
  if (before !== undefined) requestHooks.push({ position: handlers.length, run: consumerOf(before) })
  const observers = <K extends 'onUpstreamTry' | 'onUpstreamTryEnd' | 'onFinished'>(hook: K) =>
    chain(steps.flatMap(({ def }, i) => {
      const run = handlers[i]?.[hook]
      return run === undefined ? [] : [{ plugin: def.name, run: run.bind(handlers[i]) as Observer }]
    }), hook, routeName, log, limits) as PluginHandlers[K]
  return {
    steps: steps.map(describeStep),
    requestHooks,
    responseHooks,
    onUpstreamTry: observers('onUpstreamTry'),
    onUpstreamTryEnd: observers('onUpstreamTryEnd'),
    onFinished: observers('onFinished'),
    redactedHeaders: [...redacted],
    hookTimeoutMs: timeoutMs,
    dispose: disposeAll
  }
}

/** A route's plugin order without running any setup (for `routes` and `explain`). */
export function describePipeline (uses: readonly PluginUse[], plugins: ReadonlyMap<string, PluginDefinition>): Pipeline {
  return {
    steps: ordered(uses, plugins).map(describeStep),
    requestHooks: [],
    responseHooks: [],
    onUpstreamTry: undefined,
    onUpstreamTryEnd: undefined,
    onFinished: undefined,
    redactedHeaders: [],
    hookTimeoutMs: 0,
    dispose: async () => {}
  }
}

type Observer = (a: GatewayRequest, b: unknown, c: unknown) => void

/**
 * Brings the identity headers in line with a consumer the request hook of `plugin` (the one that
 * ran last) set without setIdentity (followConsumer): a consumer of the wrong shape is its failure.
 */
function consumerOf (plugin: string): RequestHook['run'] {
  return req => {
    try {
      followConsumer(req)
    } catch (err) {
      throw new PluginHookFailure(plugin, err)
    }
  }
}

/**
 * A plugin's request hook, run after the request hook of `before` (undefined: it is the first): it
 * first brings the identity headers in line with a consumer that one set, so that a plugin setting
 * req.consumer gets what the built-in auth plugins do, and the next plugins see it.
 */
function requestHook (run: RequestHook['run'], before: string | undefined): RequestHook['run'] {
  if (before === undefined) return run
  const follow = consumerOf(before)
  return req => {
    follow(req)
    return run(req)
  }
}

/**
 * One call for the plugins' observers of a hook; one that throws (whatever the value) is logged and
 * the others still run. Never throws: onFinished runs in the response's close listener. Logged
 * through `limits`, one line per route, plugin and hook in a window: a client can make one throw
 * on every request.
 */
function chain (observers: Array<{ plugin: string, run: Observer }>, hook: string, route: string, log: Logger, limits: LogLimiter): Observer | undefined {
  if (observers.length === 0) return undefined
  const msg = `plugin ${hook} hook failed`
  return (a, b, c) => {
    for (const o of observers) {
      try {
        o.run(a, b, c)
      } catch (err) {
        const fields = { route, plugin: o.plugin }
        if (limits.allow(`${route}\0${o.plugin}`, 'error', fields, msg, { key: `${route}\0${o.plugin}`, fields })) {
          logThrown(log, 'error', msg, err, { ...fields, requestId: a.id })
        }
      }
    }
  }
}

interface Step { readonly def: PluginDefinition, readonly use: PluginUse }

const describeStep = ({ def, use }: Step): PipelineStep => ({ name: def.name, priority: def.priority, source: use.source })

function ordered (uses: readonly PluginUse[], plugins: ReadonlyMap<string, PluginDefinition>): Step[] {
  return uses.map(use => ({ def: plugins.get(use.name) as PluginDefinition, use }))
    .sort((a, b) => byRunOrder(a.def, b.def))
}

// V8's TypeErrors for a write to a frozen object: setup's config and ctx are, by design (a top-level config is every route's).
const FROZEN_WRITE = /^Cannot (?:assign to read only property|add property|delete property|redefine property|define property)|object is not extensible/
const FROZEN = ' (a plugin\'s config and ctx are read-only: copy what setup changes, e.g. { ...config })'

/** A plugin's setup, for at most `ms`: one that finishes later is disposed of then, as no config holds it. */
async function setUp (def: PluginDefinition, config: unknown, ctx: PluginSetupContext, ms: number): Promise<PluginHandlers> {
  const work = Promise.resolve().then(() => def.setup(config, ctx))
  let handlers
  try {
    handlers = await within(work, ms)
  } catch (err) {
    // The cause as logged (a reload's failure line): the thrown value itself may break pino's serializer.
    const said = describeThrown(err)
    throw new PluginSetupError(def.name, ctx.routeName, FROZEN_WRITE.test(said) ? `${said}${FROZEN}` : said, { cause: loggedThrown(err) })
  }
  if (handlers === LATE) {
    work.then(h => h.dispose?.()).catch(() => {})
    throw new PluginSetupError(def.name, ctx.routeName, `setup did not finish within ${ms} ms (server.pluginTimeout)`)
  }
  const problem = hooksProblem(handlers)
  if (problem === undefined) return handlers
  // What it did set up is still freed, if it says how.
  const dispose = (handlers as { dispose?: unknown } | null | undefined)?.dispose
  if (typeof dispose === 'function') Promise.resolve().then(() => dispose.call(handlers)).catch(() => {})
  throw new PluginSetupError(def.name, ctx.routeName, problem)
}

const HOOKS = ['onRequest', 'onResponse', 'onUpstreamTry', 'onUpstreamTryEnd', 'onFinished', 'dispose'] as const

/** Why what a setup returned is not hooks (a JS plugin may return anything), or undefined. */
function hooksProblem (handlers: unknown): string | undefined {
  if (typeof handlers !== 'object' || handlers === null) return `setup must return its hooks (an object, {} for none), not ${handlers === null ? 'null' : typeof handlers}`
  for (const hook of HOOKS) {
    const run = (handlers as Record<string, unknown>)[hook]
    if (run !== undefined && typeof run !== 'function') return `setup must return hooks that are functions: ${hook} is ${run === null ? 'null' : `a ${typeof run}`}`
  }
  return undefined
}
