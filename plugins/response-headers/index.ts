import { definePlugin, type PluginCheckRoute, type PluginConfigProblem } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits, droppedEdits, headerEditTwins, type HeaderEdits } from '../shared/header-edits.ts'
import { addVary } from '../shared/vary.ts'

// Node writes a Date on every response that has none (RFC 9110 6.6.1: a server with a clock sends one).
const NO_DATE = 'Date cannot be removed: the gateway writes the current date on every response that has none (RFC 9110 6.6.1)'
// Vary names what the response depends on: a name dropped lets a cache in front serve it to clients
// it does not fit (gzip to one that takes none); a name added never does. Built-ins that add to it:
const ADD_TO_VARY = new Set(['compress', 'cors'])
// On a compress route, Content-Encoding says how the bytes sent are encoded, per client: removed,
// replaced or set, the client reads gzip as plain (or plain as gzip).
const CODING = 'Content-Encoding cannot be removed, renamed from or to, or set on a route with compress: it says how compress encoded the body sent to each client, which then could not read it'
// compress weakens a strong ETag (RFC 9110 8.8.1: its bytes differ from the plain body's): a strong
// one put back would name the gzip and the plain bytes alike.
const STRONG_ETAG = 'ETag cannot be set to a strong validator or renamed onto on a route with compress: the encoded and the plain body would share it (RFC 9110 8.8.1); set a weak one (W/"...")'
// compress removes these from a body it encodes: they describe the bytes sent (digests, their ranges) or
// the representation, content coding included (Repr-Digest, RFC 9530 2); one put back is false there.
const BODY_FIELDS = new Set(['content-digest', 'repr-digest', 'content-md5', 'digest', 'accept-ranges'])
const BODY_FIELD = 'Content-Digest, Repr-Digest, Content-MD5, Digest and Accept-Ranges cannot be set or renamed onto on a route with compress: ' +
  'they describe the bytes sent, which compress changes for each client (and removes them when it does); Accept-Ranges: none may be set'
// cors answers these from its config, on every response of its route: one edited here would go
// beside or instead of its own (Allow-Origin: * with its Allow-Credentials: true, refused by browsers).
const CORS = 'Access-Control-* headers cannot be set, removed, or renamed from or to on a route with cors: cors answers them from its config ' +
  '(origins, credentials, exposeHeaders...); set them there'
// The cache never stores Set-Cookie, but these edits run after it, on its hits too: a header renamed
// onto it (X-Session) comes from the stored response, one client's, and a set gives all one cookie.
const COOKIE_RENAME = 'Set-Cookie cannot be renamed onto on a route with cache: the edits run after the cache, on its hits too, so the header renamed ' +
  '(one client\'s session, stored with the response) would reach every client served from it; the upstream must send Set-Cookie itself (the cache never stores it)'
const COOKIE_SET = 'Set-Cookie cannot be set on a route with cache: the edits run after the cache, so every client, served from it or not, ' +
  'would get the same cookie; the upstream must send Set-Cookie itself (the cache never stores it)'

// Host names the request's site: the gateway drops one a plugin puts on a response (src/proxy/hop-by-hop.ts).
const NO_HOST = 'Host cannot be set or renamed from or to on a response: it is a request header, and the gateway drops it from every response'

const named = (target: string) => (name: string): boolean => name.toLowerCase() === target
const isVary = named('vary')
const isCoding = named('content-encoding')
const isEtag = named('etag')
const isCookie = named('set-cookie')
const isHost = named('host')
const isCors = (name: string): boolean => name.toLowerCase().startsWith('access-control-')
/** A body field with a value that would be false for an encoded body (`Accept-Ranges: none` is true of any). */
const falseWhenEncoded = (name: string, value: string): boolean =>
  BODY_FIELDS.has(name.toLowerCase()) && !(name.toLowerCase() === 'accept-ranges' && value.trim().toLowerCase() === 'none')

function check (config: HeaderEdits, route: PluginCheckRoute | undefined): PluginConfigProblem[] {
  const problems = headerEditTwins(config)
  config.remove?.forEach((name, i) => { if (name.toLowerCase() === 'date') problems.push({ path: ['remove', i], message: NO_DATE }) })
  for (const [from, to] of Object.entries(config.rename ?? {})) if (isHost(from) || isHost(to)) problems.push({ path: ['rename', from], message: NO_HOST })
  for (const name of Object.keys(config.set ?? {})) if (isHost(name)) problems.push({ path: ['set', name], message: NO_HOST })
  const plugins = new Set(route?.plugins.map(p => p.name))
  if (plugins.has('cors')) {
    config.remove?.forEach((name, i) => { if (isCors(name)) problems.push({ path: ['remove', i], message: CORS }) })
    for (const [from, to] of Object.entries(config.rename ?? {})) if (isCors(from) || isCors(to)) problems.push({ path: ['rename', from], message: CORS })
    for (const name of Object.keys(config.set ?? {})) if (isCors(name)) problems.push({ path: ['set', name], message: CORS })
  }
  if (plugins.has('cache')) {
    for (const [from, to] of Object.entries(config.rename ?? {})) if (isCookie(to)) problems.push({ path: ['rename', from], message: COOKIE_RENAME })
    for (const name of Object.keys(config.set ?? {})) if (isCookie(name)) problems.push({ path: ['set', name], message: COOKIE_SET })
  }
  const adders = [...plugins].filter(name => ADD_TO_VARY.has(name))
  if (adders.length === 0) return problems
  const dropped = `Vary cannot be removed or replaced on a route with ${adders.join(' and ')}, which add to it: a cache in front ` +
    'would serve the response to clients it does not fit; set: { vary: ... } adds names to it'
  const compress = plugins.has('compress')
  config.remove?.forEach((name, i) => {
    if (isVary(name)) problems.push({ path: ['remove', i], message: dropped })
    else if (compress && isCoding(name)) problems.push({ path: ['remove', i], message: CODING })
  })
  for (const [from, to] of Object.entries(config.rename ?? {})) {
    if (isVary(from) || isVary(to)) problems.push({ path: ['rename', from], message: dropped })
    else if (compress && (isCoding(from) || isCoding(to))) problems.push({ path: ['rename', from], message: CODING })
    else if (compress && isEtag(to)) problems.push({ path: ['rename', from], message: STRONG_ETAG })
    else if (compress && BODY_FIELDS.has(to.toLowerCase())) problems.push({ path: ['rename', from], message: BODY_FIELD })
  }
  if (!compress) return problems
  for (const [name, value] of Object.entries(config.set ?? {})) {
    if (isCoding(name)) problems.push({ path: ['set', name], message: CODING })
    else if (isEtag(name) && !value.trimStart().startsWith('W/')) problems.push({ path: ['set', name], message: STRONG_ETAG })
    else if (falseWhenEncoded(name, value)) problems.push({ path: ['set', name], message: BODY_FIELD })
  }
  return problems
}

/**
 * Edits the headers sent to the client: remove, rename, set (in that order). Priority 5000, above
 * every built-in: a plugin's reply goes through the response hooks of the plugins before it only,
 * so outermost, the edits apply to every answer of the route (a 401, a 429, a cache hit, a CORS
 * preflight), and after every other response hook (the cache stores the response unedited).
 * A set of Vary adds its names to those there (compress's, cors's, the upstream's), never replaces them.
 */
export default definePlugin({
  name: 'response-headers',
  priority: 5000,
  schema: HeaderEditsSchema,
  check,
  replacing: droppedEdits,
  setup (config) {
    const set = Object.entries(config.set ?? {})
    const edit = compileHeaderEdits({ ...config, set: Object.fromEntries(set.filter(([name]) => !isVary(name))) })
    const vary = set.filter(([name]) => isVary(name)).flatMap(([, value]) => value.split(','))
      .map(name => name.trim().toLowerCase()).filter(name => name !== '')
    if (vary.length === 0) return { onResponse (res) { edit(res.headers) } }
    return {
      onResponse (res) {
        edit(res.headers)
        for (const name of vary) addVary(res.headers, name)
      }
    }
  }
})
