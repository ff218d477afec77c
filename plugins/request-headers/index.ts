import { definePlugin, isForwardingHeader, isIdentityHeader, type PluginConfigProblem } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits } from '../shared/header-edits.ts'

/** Edits the headers sent upstream: remove, rename, set (in that order). */
export default definePlugin({
  name: 'request-headers',
  priority: 800,
  schema: HeaderEditsSchema,
  // The identity headers are the auth plugins' (the cache, too, reads x-anonymous-consumer): a
  // rename onto one would let a client's header pose as the identity, a set would forge it.
  // A rename onto a forwarding header (X-Real-IP...) would let the client claim another address;
  // a set is the operator's fixed value.
  check (config) {
    const problems: PluginConfigProblem[] = []
    for (const [from, to] of Object.entries(config.rename ?? {})) {
      const lower = to.toLowerCase()
      if (isIdentityHeader(lower)) problems.push({ path: ['rename', from], message: `"${to}" is an identity header, set by auth plugins only` })
      else if (isForwardingHeader(lower)) problems.push({ path: ['rename', from], message: `"${to}" tells the upstream who the client is: the gateway sets it (server.trustProxy)` })
    }
    for (const name of Object.keys(config.set ?? {})) {
      if (isIdentityHeader(name.toLowerCase())) problems.push({ path: ['set', name], message: `"${name}" is an identity header, set by auth plugins only` })
    }
    return problems
  },
  setup (config) {
    const edit = compileHeaderEdits(config)
    return { onRequest (req) { edit(req.headers) } }
  }
})
