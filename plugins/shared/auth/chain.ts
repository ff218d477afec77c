import type { Consumer, GatewayRequest, PluginSetupContext } from '../../../src/index.ts'
import type { Challenge } from './challenge.ts'

/** What one auth plugin of a route brings to the route's chain. */
export interface ChainMember {
  readonly plugin: string
  readonly challenge: Challenge
  /** Consumer id to admit requests without any credential as. */
  readonly anonymous?: string
  /** Admit requests without any credential, as no consumer. */
  readonly optional?: boolean
  /** With hideCredentials: removes its credential from what is sent upstream, when it decides and on anonymous requests. */
  readonly hide?: ((req: GatewayRequest) => void) | undefined
  /**
   * Removes its credential, whatever hideCredentials says, when another member decides
   * (CompiledLocation.removeUnjudged): the upstream never gets a credential the gateway did not
   * check. Without it, hide does so.
   */
  readonly remove?: (req: GatewayRequest) => void
  /** Removes its query parameter credentials from req.query, whatever hideCredentials says: for redirect, whose Location would pass them to another site. */
  readonly removeFromQuery?: (req: GatewayRequest) => void
}

/**
 * The auth plugins of one route, any of which may admit a request: the first credential present
 * decides, and the others' are removed; without any, the last member to run answers 401 (or
 * admits the anonymous consumer).
 * Built while the route's plugins are set up, complete before its first request.
 */
class AuthChain {
  readonly members: ChainMember[] = []
  /** Set when a member allows requests without credentials: the consumer they get (undefined: none). */
  anonymous: { consumer: Consumer | undefined } | undefined
  #anonymousFrom: string | undefined
  /** The members' hide, run on a request no member found a credential in. */
  readonly #hides: Array<(req: GatewayRequest) => void> = []

  join (member: ChainMember, ctx: PluginSetupContext): void {
    this.members.push(member)
    if (member.hide !== undefined) this.#hides.push(member.hide)
    if (member.anonymous === undefined && member.optional !== true) return
    // A consumer that exists: checked at load (ConsumerId), as members that differ are, at the key (checkAuthRoute).
    const consumer = member.anonymous === undefined ? undefined : ctx.consumers.get(member.anonymous)
    if (this.anonymous !== undefined && this.anonymous.consumer !== consumer) {
      throw new Error(`route "${ctx.routeName}": ${member.plugin} and ${this.#anonymousFrom} admit anonymous requests differently; give them the same anonymous consumer`)
    }
    if (consumer !== undefined) warnHeldAnonymous(consumer, member.plugin, ctx)
    this.anonymous = { consumer }
    this.#anonymousFrom = member.plugin
  }

  get size (): number { return this.members.length }

  /** Removes the credentials of the members with hideCredentials (without any: a length check). */
  hide (req: GatewayRequest): void {
    const hides = this.#hides
    for (let i = 0; i < hides.length; i++) (hides[i] as (req: GatewayRequest) => void)(req)
  }

  /** `by` found a credential: its own goes as its hideCredentials says, the other members' go. */
  decided (by: ChainMember, req: GatewayRequest): void {
    const members = this.members
    for (let i = 0; i < members.length; i++) {
      const m = members[i] as ChainMember
      const removal = m === by ? m.hide : m.remove ?? m.hide
      if (removal !== undefined) removal(req)
    }
  }

  /** For the metric and log line when no member found a credential. */
  get plugins (): string { return this.members.map(m => m.plugin).join(',') }
}

/** The plugins consumers hold credentials for (consumers[].credentials.<plugin>). */
const CREDENTIAL_PLUGINS = ['key-auth', 'basic-auth']
// The anonymous consumers warned of, per config (its Consumers): one line each, not one per route.
const warned = new WeakMap<object, Set<string>>()

/**
 * Warns when the anonymous consumer holds credentials: every request without any is admitted as
 * it, its groups and what acl allows it included, which a consumer made for one client seldom means.
 */
function warnHeldAnonymous (consumer: Consumer, plugin: string, ctx: PluginSetupContext): void {
  let ids = warned.get(ctx.consumers)
  if (ids === undefined) warned.set(ctx.consumers, ids = new Set())
  if (ids.has(consumer.id)) return
  const held = CREDENTIAL_PLUGINS.filter(p => ctx.consumers.credentialsFor(p).some(c => c.consumer === consumer))
  if (held.length === 0) return
  ids.add(consumer.id)
  ctx.log.warn({ consumer: consumer.id, route: ctx.routeName, credentials: held },
    `${plugin}: route "${ctx.routeName}" admits requests without credentials as consumer "${consumer.id}", which holds ${held.join(' and ')} credentials: ` +
    'any client sending none passes as it, with its groups and whatever acl allows it; make a consumer without credentials for anonymous requests')
}

// One chain per route of one config, by route name; the config's Consumers object stands for the config.
const chains = new WeakMap<object, Map<string, AuthChain>>()

export function chainOf (ctx: PluginSetupContext): AuthChain {
  let routes = chains.get(ctx.consumers)
  if (routes === undefined) chains.set(ctx.consumers, routes = new Map())
  let chain = routes.get(ctx.routeName)
  if (chain === undefined) routes.set(ctx.routeName, chain = new AuthChain())
  return chain
}
