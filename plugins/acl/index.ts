import { definePlugin, type Consumer, type PluginConfigProblem } from '../../src/index.ts'
import { chainOf } from '../shared/auth/chain.ts'
import { failureCounter, fail, refuse } from '../shared/auth/failure.ts'
import { AclSchema } from './schema.ts'

const DENIED = fail(403, 'denied', 'forbidden', 'this consumer may not use this route')
const NOBODY = fail(403, 'no_consumer', 'forbidden', 'this route needs an authenticated consumer')

interface Who { groups?: string[], consumers?: string[] }
interface Compiled { groups: ReadonlySet<string>, ids: ReadonlySet<string> }
/** `who` as a warning names it: `consumers a, b and groups c`. */
const named = (who: Who): string =>
  [who.consumers?.length ? `consumers ${who.consumers.join(', ')}` : '', who.groups?.length ? `groups ${who.groups.join(', ')}` : ''].filter(s => s !== '').join(' and ')
const compile = (who: Who | undefined): Compiled | undefined =>
  who === undefined ? undefined : { groups: new Set(who.groups), ids: new Set(who.consumers) }
const matches = (who: Compiled, c: Consumer) => who.ids.has(c.id) || c.groups.some(g => who.groups.has(g))

/** A name in `known` that `name` differs from in case only: names match case-sensitively. */
const otherCase = (name: string, known: Iterable<string>): string | undefined => {
  const lower = name.toLowerCase()
  for (const k of known) if (k.toLowerCase() === lower) return k
  return undefined
}

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
  replacing (top, route) {
    const kept = (list: 'groups' | 'consumers') => (top.deny?.[list] ?? []).filter(e => route.deny?.[list]?.includes(e) !== true)
    const lost = named({ consumers: kept('consumers'), groups: kept('groups') })
    return [
      ...lost === '' ? [] : [`the top-level deny of ${lost}`],
      ...top.allow !== undefined && route.allow === undefined ? [`the top-level allow (${named(top.allow)}): every consumer the route does not deny passes, and requests without one`] : []
    ]
  },
  check (config) {
    // An empty list (from templating, say) must not silently open a route or refuse everyone.
    const problems: PluginConfigProblem[] = []
    for (const key of ['allow', 'deny'] as const) {
      const who: Who | undefined = config[key]
      if (who === undefined) continue
      if (who.groups === undefined && who.consumers === undefined) {
        problems.push({ path: [key], message: key === 'allow'
          ? 'an empty allow would refuse every request: remove it, or list the groups or consumers to allow'
          : 'an empty deny refuses nobody: remove it, or list the groups or consumers to deny' })
      }
      for (const list of ['groups', 'consumers'] as const) {
        if (who[list]?.length === 0) problems.push({ path: [key, list], message: `an empty ${list} list names nobody: remove it, or list the ${list} to ${key}` })
      }
    }
    return problems
  },
  setup (config, ctx) {
    const allow = compile(config.allow)
    const deny = compile(config.deny)
    const ids = ctx.consumers.all.map(c => c.id)
    for (const id of new Set([...allow?.ids ?? [], ...deny?.ids ?? []])) {
      if (ctx.consumers.get(id) !== undefined) continue
      const cased = otherCase(id, ids)
      ctx.log.warn({ consumer: id }, cased === undefined
        ? `acl: consumer "${id}" is not under consumers: (it may still come from a token)`
        : `acl: consumer "${id}" is not under consumers:, but "${cased}" is: ids match case-sensitively`)
    }
    const groups = new Set(ctx.consumers.all.flatMap(c => c.groups))
    for (const group of new Set([...allow?.groups ?? [], ...deny?.groups ?? []])) {
      if (groups.has(group)) continue
      const cased = otherCase(group, groups)
      ctx.log.warn({ group }, cased === undefined
        ? `acl: no consumer under consumers: has group "${group}" (it may still come from a token's groupsClaim)`
        : `acl: no consumer under consumers: has group "${group}", but one has "${cased}": groups match case-sensitively`)
    }
    // The built-in auth plugins (set up before acl, which runs after them) join the route's chain;
    // one of the user's own may set req.consumer too: the core cannot tell, hence a warning only.
    if (chainOf(ctx).size === 0) {
      ctx.log.warn(`acl: no auth plugin (jwt-auth, key-auth, basic-auth) on this route sets a consumer: unless a plugin of your own does, ${
        allow === undefined ? 'every request passes' : 'every request is refused (no_consumer)'}`)
    }
    const counter = failureCounter(ctx.metrics)
    return {
      onRequest (req) {
        const c = req.consumer
        if (c === undefined) return allow !== undefined ? refuse(req, NOBODY, 'acl', ctx.log, counter, []) : undefined
        if ((deny !== undefined && matches(deny, c)) || (allow !== undefined && !matches(allow, c))) return refuse(req, DENIED, 'acl', ctx.log, counter, [])
        return undefined
      }
    }
  }
})
