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
  /** With hideCredentials: removes its credential from what is sent upstream, whichever member decides. */
  readonly hide?: ((req: GatewayRequest) => void) | undefined
  /** Removes its query parameter credentials from req.query, whatever hideCredentials says: for redirect, whose Location would pass them to another site. */
  readonly removeFromQuery?: (req: GatewayRequest) => void
}

/**
 * The auth plugins of one route, any of which may admit a request: the first credential present
 * decides; without any, the last member to run answers 401 (or admits the anonymous consumer).
 * Built while the route's plugins are set up, complete before its first request.
 */
class AuthChain {
  readonly members: ChainMember[] = []
  /** Set when a member allows requests without credentials: the consumer they get (undefined: none). */
  anonymous: { consumer: Consumer | undefined } | undefined
  #anonymousFrom: string | undefined
  /** The members' hide, run once a request is decided, whichever member decides. */
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
    this.anonymous = { consumer }
    this.#anonymousFrom = member.plugin
  }

  get size (): number { return this.members.length }

  /** Removes the credentials of the members with hideCredentials (without any: a length check). */
  hide (req: GatewayRequest): void {
    const hides = this.#hides
    for (let i = 0; i < hides.length; i++) (hides[i] as (req: GatewayRequest) => void)(req)
  }

  /** For the metric and log line when no member found a credential. */
  get plugins (): string { return this.members.map(m => m.plugin).join(',') }
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
