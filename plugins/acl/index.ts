import { definePlugin, type Consumer } from '../../src/index.ts'
import { failureCounter, fail, refuse } from '../shared/auth/failure.ts'
import { AclSchema } from './schema.ts'

const DENIED = fail(403, 'denied', 'forbidden', 'this consumer may not use this route')
const NOBODY = fail(403, 'no_consumer', 'forbidden', 'this route needs an authenticated consumer')

interface Compiled { groups: ReadonlySet<string>, ids: ReadonlySet<string> }
const compile = (who: { groups?: string[], consumers?: string[] } | undefined): Compiled | undefined =>
  who === undefined ? undefined : { groups: new Set(who.groups), ids: new Set(who.consumers) }
const matches = (who: Compiled, c: Consumer) => who.ids.has(c.id) || c.groups.some(g => who.groups.has(g))

/**
 * Allow and deny lists of consumer groups and ids, after authentication (req.consumer). Requests
 * without a consumer pass only where there is no allow list.
 */
export default definePlugin({
  name: 'acl',
  // Below every auth plugin (1000-2999, a custom one at 1000 too), above rate limiting (950):
  // denied requests use no quota.
  priority: 990,
  schema: AclSchema,
  setup (config, ctx) {
    const allow = compile(config.allow)
    const deny = compile(config.deny)
    for (const id of [...allow?.ids ?? [], ...deny?.ids ?? []]) {
      if (ctx.consumers.get(id) === undefined) ctx.log.warn({ consumer: id }, `acl: consumer "${id}" is not under consumers: (it may still come from a token)`)
    }
    const counter = failureCounter(ctx.metrics)
    return {
      onRequest (req) {
        const c = req.consumer
        if (c === undefined) return allow === undefined ? undefined : refuse(req, NOBODY, 'acl', ctx.log, counter, [])
        if ((deny !== undefined && matches(deny, c)) || (allow !== undefined && !matches(allow, c))) return refuse(req, DENIED, 'acl', ctx.log, counter, [])
        return undefined
      }
    }
  }
})
