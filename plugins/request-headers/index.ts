import { definePlugin, isForwardingHeader, isIdentityHeader, type PluginCheckRoute, type PluginConfigProblem } from '../../src/index.ts'
import { hostHeaderProblem } from '../../src/routing/host-pattern.ts'
import { configVerifiedHeaders, stripForm } from '../shared/auth/route-check.ts'
import { HeaderEditsSchema, compileHeaderEdits, droppedEdits, headerEditTwins, type HeaderEdits } from '../shared/header-edits.ts'

// The client's Host is not among the headers plugins see: the route decides the upstream's.
const NO_HOST = 'the client\'s Host never reaches the upstream as such: it gets the route\'s (the target\'s, preserveHost or hostHeader), ' +
  'which set: { host: ... } replaces; the client\'s is in X-Forwarded-Host (rename that)'
// The gateway refuses a client Host it cannot route or key safely (400 bad_host); a renamed
// header would bypass that, and the cache keys on the client's Host, not on the one sent.
const ONTO_HOST = 'a client\'s header renamed onto Host would choose the site the upstream serves, past the gateway\'s checks of the client\'s Host ' +
  '(and apart from the Host the cache keys on): set: { host: ... } gives it a fixed value'
// The gateway writes the request's id after every plugin (the client's when short and safe, else a
// new one): an edit would change nothing, a rename from it would pass on the client's unchecked value.
const REQUEST_ID = 'X-Request-ID (X_Request_ID too, which CGI, WSGI and PHP upstreams read as it) is the gateway\'s: it sends the request\'s id upstream after every plugin has run (the client\'s when short and safe, else a new one), ' +
  'so it cannot be set, removed or renamed from or to'
// In any spelling: a CGI, WSGI or PHP upstream reads X_Request_ID as X-Request-ID.
const isRequestId = (name: string) => stripForm(name) === 'x-request-id'

/**
 * Headers an auth plugin sets from what it verified (jwt-auth's forwardClaims, on any route of the
 * config: the gateway removes the client's on every route), by stripped form and the plugin that
 * sets them. As for identity headers, a rename onto one would let a client's header pose as the
 * claim, a set would forge it: on any route, as the upstream cannot tell routes apart.
 */
function verifiedOnRoute (route: PluginCheckRoute | undefined): ReadonlyMap<string, string> {
  return route === undefined ? new Map() : configVerifiedHeaders(name => route.configsOf(name))
}

function check (config: HeaderEdits, route: PluginCheckRoute | undefined): PluginConfigProblem[] {
  const problems = headerEditTwins(config)
  const verified = verifiedOnRoute(route)
  const claimed = (name: string) => {
    const plugin = verified.get(stripForm(name))
    return plugin === undefined ? undefined : `"${name}" carries a claim ${plugin} verified (forwardClaims): set by it only`
  }
  config.remove?.forEach((name, i) => {
    if (name.toLowerCase() === 'host') problems.push({ path: ['remove', i], message: NO_HOST })
    else if (isRequestId(name)) problems.push({ path: ['remove', i], message: REQUEST_ID })
  })
  for (const [from, to] of Object.entries(config.rename ?? {})) {
    const lower = to.toLowerCase()
    if (from.toLowerCase() === 'host') problems.push({ path: ['rename', from], message: NO_HOST })
    else if (isRequestId(from) || isRequestId(to)) problems.push({ path: ['rename', from], message: REQUEST_ID })
    else if (lower === 'host') problems.push({ path: ['rename', from], message: ONTO_HOST })
    else if (isIdentityHeader(lower)) problems.push({ path: ['rename', from], message: `"${to}" is an identity header, set by auth plugins only` })
    else if (isForwardingHeader(lower)) problems.push({ path: ['rename', from], message: `"${to}" tells the upstream who the client is: the gateway sets it (server.trustProxy)` })
    else {
      const problem = claimed(to)
      if (problem !== undefined) problems.push({ path: ['rename', from], message: problem })
    }
  }
  for (const [name, value] of Object.entries(config.set ?? {})) {
    const lower = name.toLowerCase()
    // Sent as the Host upstream: undici and the upstream refuse anything else (or read another host in it).
    const problem = lower === 'host' ? hostHeaderProblem(value)
      : isRequestId(lower) ? REQUEST_ID
        : isIdentityHeader(lower) ? `"${name}" is an identity header, set by auth plugins only` : claimed(name)
    if (problem !== undefined) problems.push({ path: ['set', name], message: problem })
  }
  return problems
}

/** Edits the headers sent upstream: remove, rename, set (in that order). */
export default definePlugin({
  name: 'request-headers',
  priority: 800,
  schema: HeaderEditsSchema,
  // The identity headers are the auth plugins' (the cache, too, reads x-anonymous-consumer), as are
  // the headers they forward verified claims in: a rename onto one would let a client's header pose
  // as the identity, a set would forge it. A rename onto a forwarding header (X-Real-IP...) would
  // let the client claim another address; a set is the operator's fixed value.
  check,
  replacing: (top, route) => droppedEdits(top, route, stripForm),
  setup (config) {
    const edit = compileHeaderEdits(config, true)
    return { onRequest (req) { edit(req.headers) } }
  }
})
