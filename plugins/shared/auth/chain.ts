import type { Consumer, GatewayRequest, HeaderMap, PluginSetupContext } from '../../../src/index.ts'
import type { Challenge } from './challenge.ts'
import { configVerifiedHeaders } from './route-check.ts'

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
}

/**
 * The auth plugins of one route, any of which may admit a request: the first credential present
 * decides; without any, the last member to run answers 401 (or admits the anonymous consumer).
 * Built while the route's plugins are set up, complete before its first request.
 */
class AuthChain {
  readonly members: ChainMember[] = []
  /**
   * The headers auth plugins set besides the identity headers (which setIdentity replaces), `_` as
   * `-`, on any route of the config (a route that turns jwt-auth off still must not pass a client's
   * x-user-email for a verified one): removed from the client's request before the first member looks at it.
   */
  readonly #stripped: ReadonlySet<string>
  /** Set when a member allows requests without credentials: the consumer they get (undefined: none). */
  anonymous: { consumer: Consumer | undefined } | undefined
  #anonymousFrom: string | undefined
  /** The members' hide, run once a request is decided, whichever member decides. */
  readonly #hides: Array<(req: GatewayRequest) => void> = []

  constructor (stripped: ReadonlySet<string>) {
    this.#stripped = stripped
  }

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

  /** Also each name with `_` for `-` (x_user_email): many servers (CGI, WSGI, Rack) read both as HTTP_X_USER_EMAIL. */
  strip (headers: HeaderMap): void {
    const stripped = this.#stripped
    if (stripped.size === 0) return
    for (const name in headers) {
      const dashed = name.includes('_') ? name.replaceAll('_', '-') : name
      if (stripped.has(dashed)) headers[name] = undefined
    }
  }
}

/** One chain per route of one config, and the headers they all strip, found once per config. */
interface ConfigChains { readonly routes: Map<string, AuthChain>, readonly stripped: ReadonlySet<string> }

// The config's Consumers object stands for the config.
const chains = new WeakMap<object, ConfigChains>()

export function chainOf (ctx: PluginSetupContext): AuthChain {
  let config = chains.get(ctx.consumers)
  if (config === undefined) chains.set(ctx.consumers, config = { routes: new Map(), stripped: new Set(configVerifiedHeaders(name => ctx.configsOf(name)).keys()) })
  let chain = config.routes.get(ctx.routeName)
  if (chain === undefined) config.routes.set(ctx.routeName, chain = new AuthChain(config.stripped))
  return chain
}
