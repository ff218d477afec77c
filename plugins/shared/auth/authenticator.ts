import { ANONYMOUS_HEADER, setIdentity, type Consumer, type GatewayRequest, type PluginReply, type PluginSetupContext } from '../../../src/index.ts'
import { chainOf, type ChainMember } from './chain.ts'
import { failureCounter, MISSING, refuse, type AuthFailure } from './failure.ts'

/** A credential that checked out. */
export interface Verified {
  readonly consumer: Consumer | undefined
  /** Verified token claims: put in req.locals.claims for later plugins (rate-limit keys on claim:<name>). */
  readonly claims?: Readonly<Record<string, unknown>>
  /** More headers for the upstream (forwarded claims), set after the identity headers. */
  readonly headers?: ReadonlyArray<readonly [string, string]>
}

export type Outcome = Verified | AuthFailure

export interface AuthSpec<C> extends ChainMember {
  /** The request's credential for this plugin, or undefined when it carries none. */
  extract (req: GatewayRequest): C | undefined
  verify (credential: C, req: GatewayRequest): Outcome | Promise<Outcome>
  /** Removes what the upstream could take for this plugin's credential though it is never judged (CompiledLocation.scrub); run after extract. */
  scrub (req: GatewayRequest): void
}

type Hook = (req: GatewayRequest) => PluginReply | undefined | Promise<PluginReply | undefined>

// req.locals key: how many of the route's auth plugins found no credential so far, or DECIDED.
const STATE = 'portcullis.auth'
const DECIDED = -1

const isFailure = (o: Outcome): o is AuthFailure => 'status' in o

/** The request hook of an auth plugin: its part of the route's chain, the replies, metric and log line. */
export function authenticator<C> (spec: AuthSpec<C>, ctx: PluginSetupContext): Hook {
  const chain = chainOf(ctx)
  chain.join(spec, ctx)
  const counter = failureCounter(ctx.metrics)
  const { log } = ctx

  const settle = (req: GatewayRequest, outcome: Outcome): PluginReply | undefined => {
    if (isFailure(outcome)) {
      const challenged = outcome.status === 401 || outcome.code === 'insufficient_scope'
      return refuse(req, outcome, spec.plugin, log, counter, challenged ? [spec.challenge(outcome)] : [])
    }
    setIdentity(req, outcome.consumer)
    if (outcome.claims !== undefined) req.locals.claims = outcome.claims
    if (outcome.headers !== undefined) for (const [name, value] of outcome.headers) req.headers[name] = value
    return undefined
  }

  const withoutCredential = (req: GatewayRequest): PluginReply | undefined => {
    const anonymous = chain.anonymous
    if (anonymous === undefined) return refuse(req, MISSING, chain.plugins, log, counter, chain.members.map(m => m.challenge(undefined)))
    chain.hide(req)
    // Optional auth keeps whoever an earlier plugin recognised (the gateway removed the client's identity headers).
    if (anonymous.consumer !== undefined) {
      setIdentity(req, anonymous.consumer)
      req.headers[ANONYMOUS_HEADER] = 'true'
    }
    return undefined
  }

  const check = (req: GatewayRequest, credential: C) => {
    chain.decided(spec, req)
    const outcome = spec.verify(credential, req)
    return outcome instanceof Promise ? outcome.then(o => settle(req, o)) : settle(req, outcome)
  }

  return req => {
    // The usual case, one auth plugin on the route: no bookkeeping.
    if (chain.size === 1) {
      const credential = spec.extract(req)
      // After reading (a query parameter's copy in another case beside it makes it malformed).
      spec.scrub(req)
      return credential === undefined ? withoutCredential(req) : check(req, credential)
    }
    const seen = req.locals[STATE] as number | undefined
    const credential = seen === DECIDED ? undefined : spec.extract(req)
    // Whichever member decides, or none.
    spec.scrub(req)
    if (seen === DECIDED) return undefined
    if (credential === undefined) {
      const absent = (seen ?? 0) + 1
      if (absent < chain.size) { req.locals[STATE] = absent; return undefined }
      req.locals[STATE] = DECIDED
      return withoutCredential(req)
    }
    req.locals[STATE] = DECIDED
    return check(req, credential)
  }
}
