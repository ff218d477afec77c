import { definePlugin, StoreError, workerPlace, type GatewayRequest, type PluginReply } from '../../src/index.ts'
import { decideScript, LATE } from './decide-script.ts'
import { allowed, tooManyRequests, writeQuotaHeaders, type Decision } from './headers.ts'
import { compilePlans, limitNameProblems, limitValueProblems, overridingConsumers, type Plan } from './plans.ts'
import { Precheck, SHARED_RECHECK_MS } from './precheck.ts'
import { ConsumerOverridesSchema, RateLimitSchema } from './schema.ts'
import { serverClock } from '../shared/server-clock.ts'
import { decideBySlot, slotCalls } from './slots.ts'
import { storeErrorLog } from '../shared/store-errors.ts'

/** What a decision the store ran after the gateway gave up on it fails with (it charged nothing). */
const LATE_ERROR = new StoreError('STORE_UNAVAILABLE', 'the store ran the decision after commandTimeout: nothing counted')

/**
 * Limits requests per consumer, IP, route, header or claim, on a memory or shared (Redis) store:
 * every limit of a request decided by one atomic store script (on Redis Cluster, one per hash tag).
 */
export default definePlugin({
  name: 'rate-limit',
  priority: 950,
  schema: RateLimitSchema,
  consumerMetadata: ConsumerOverridesSchema,
  check: config => [...limitNameProblems(config.limits), ...limitValueProblems(config)],
  setup (config, ctx) {
    const store = ctx.store(config.store)
    ctx.shared(`per-worker warning ${store.name}`, () => {
      const workers = workerPlace()
      // Every worker builds the config: the first says it, once per config and store.
      if (store.type === 'memory' && workers?.index === 0) {
        ctx.log.warn({ store: store.name, workers: workers.count },
          `rate-limit: counters are kept per worker in memory store "${store.name}": a limit allows up to ${workers.count} × its requests per window; use a Redis store`)
      }
    })
    const by = config.by ?? ['consumer']
    // Built once per config for the routes with the same settings, from the consumers that override
    // a limit (found once): not routes x consumers (6,000 routes and 20,000 consumers took seconds).
    const { plans, bySlot } = ctx.shared(`plans ${JSON.stringify(config)}`, () => {
      const plans = compilePlans(config, ctx.shared('overriding consumers', () => overridingConsumers(ctx.consumers.all)))
      return { plans, bySlot: store.cluster === true ? slotCalls(plans, l => config.limits[l.index]?.by ?? by) : undefined }
    })
    const mode = config.headers ?? 'ietf'
    const onStoreError = config.onStoreError ?? 'allow'
    // Spares a shared store a call (asked again after a few seconds, in case it lost the counter); on
    // a memory store, which loses a counter only to eviction, it keeps such a key rejected until its time.
    const precheck = config.localPrecheck !== false ? new Precheck(store.runNow === undefined ? SHARED_RECHECK_MS : Infinity) : undefined
    const timeoutMs = store.commandTimeout
    const clock = timeoutMs === undefined ? undefined : serverClock(store)
    const requests = ctx.metrics.counter({
      name: 'portcullis_ratelimit_requests_total',
      help: 'Requests the rate-limit plugin decided on, by route and result (allowed, limited, store_error).',
      labelNames: ['route', 'result']
    })
    const allowedCount = requests.labels(ctx.routeName, 'allowed')
    const limitedCount = requests.labels(ctx.routeName, 'limited')
    const errorCount = requests.labels(ctx.routeName, 'store_error')
    // At 0 from setup: a first store error (or limit) at 1 would show no increase() to alerts.
    for (const child of [allowedCount, limitedCount, errorCount]) child.inc(0)
    const errors = storeErrorLog(ctx, { store: store.name, onStoreError },
      `rate-limit: store "${store.name}" failed; requests are ${onStoreError === 'deny' ? 'denied (503)' : 'allowed unlimited'} while it does`)
    const decided = (req: GatewayRequest, plan: Plan, keys: readonly string[], d: Decision, sentAt: number): PluginReply | undefined => {
      if (allowed(d)) {
        allowedCount.inc()
        // Set now, for whatever answers the request: no response hook needed.
        if (mode !== 'none') writeQuotaHeaders(req.extraResponseHeaders, mode, plan, d)
        return undefined
      }
      limitedCount.inc()
      precheck?.remember(plan, keys, d, sentAt)
      return tooManyRequests(req.extraResponseHeaders, mode, plan, d, req.id)
    }
    const failed = (req: GatewayRequest, err: unknown): PluginReply | undefined => {
      errorCount.inc()
      errors.report(err)
      return onStoreError === 'deny'
        ? { status: 503, headers: { 'retry-after': '1' }, body: { error: 'rate_limit_unavailable', message: 'the rate-limit store is unavailable', requestId: req.id } }
        : undefined
    }
    return {
      onRequest (req) {
        const plan = (req.consumer === undefined ? undefined : plans.byConsumer.get(req.consumer.id)) ?? plans.base
        if (plan.limits.length === 0) return undefined
        const keys = plan.keysOf(req)
        const sentAt = performance.now()
        const known = precheck?.check(plan, keys, sentAt)
        if (known !== undefined) {
          limitedCount.inc()
          return tooManyRequests(req.extraResponseHeaders, mode, plan, known, req.id)
        }
        // A memory store decides at once: the hook stays synchronous.
        if (store.runNow !== undefined) return decided(req, plan, keys, store.runNow(decideScript, keys, plan.args), sentAt)
        const deadline = clock === undefined ? 0 : clock.deadline(sentAt, timeoutMs as number)
        const calls = bySlot?.get(plan)
        const decision = calls !== undefined
          ? decideBySlot(store, calls, keys, plan, deadline)
          : store.run(decideScript, keys, deadline === 0 ? plan.args : [...plan.args, deadline])
        return decision.then(d => {
          clock?.observe(sentAt, d[d.length - 1] as number)
          return d[0] === LATE ? failed(req, LATE_ERROR) : decided(req, plan, keys, d, sentAt)
        }, (err: unknown) => failed(req, err))
      }
    }
  }
})
