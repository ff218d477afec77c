import type { Consumer } from '../consumers/consumers.ts'
import { TOKEN } from '../config/names.ts'
import type { GatewayRequest, PluginDefinition } from './contract.ts'
import { describeThrown } from './thrown.ts'

/** Headers the gateway sets for the upstream; whatever the client sent under these names is removed first. */
const CONSUMER_ID = 'x-consumer-id'
const CONSUMER_GROUPS = 'x-consumer-groups'
/** "true" when an auth plugin admitted a request without credentials as its anonymous consumer. */
export const ANONYMOUS_HEADER = 'x-anonymous-consumer'
/** Every client header under this prefix is removed too (x-consumer-username...): an upstream may trust any of them. */
const IDENTITY_PREFIX = 'x-consumer-'

/** A lower-case header name with `_` for `-`: many servers (CGI, WSGI, Rack) read x_consumer_id as HTTP_X_CONSUMER_ID too. */
const dashed = (name: string): string => name.includes('_') ? name.replaceAll('_', '-') : name

const isIdentityForm = (dashedName: string): boolean => dashedName.startsWith(IDENTITY_PREFIX) || dashedName === ANONYMOUS_HEADER

/** Whether a (lower-case) header name is an identity header: x-consumer-* or x-anonymous-consumer, also with `_` for `-` (x_consumer_id). */
export const isIdentityHeader = (name: string): boolean => isIdentityForm(dashed(name))

/**
 * The headers the plugins vouch for (PluginDefinition.vouchedHeaders) over every config of each in
 * the whole config (`configsOf`: validated, defaults applied), lower-case with `_` for `-`: found
 * once per config. Load refused what vouchedBy finds wrong: a plugin that answers otherwise now throws.
 */
export function vouchedHeaders (plugins: ReadonlyMap<string, PluginDefinition>, configsOf: (plugin: string) => readonly unknown[]): ReadonlySet<string> {
  const vouched = new Set<string>()
  for (const def of plugins.values()) {
    if (def.vouchedHeaders === undefined) continue
    for (const config of configsOf(def.name)) {
      const names = vouchedBy(def, config)
      if (typeof names === 'string') throw new Error(`plugin "${def.name}": ${names}`)
      for (const name of names) vouched.add(dashed(name.toLowerCase()))
    }
  }
  return vouched
}

const HEADER_NAME = new RegExp(TOKEN)
const what = (v: unknown): string => typeof v === 'string'
  ? `the string ${JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v)}`
  : v === null || typeof v !== 'object' ? String(v) : typeof (v as { then?: unknown }).then === 'function' ? 'a promise' : 'an object'

/**
 * The headers `def` vouches for with `config` (validated), or why not: a plugin in JS may throw, or
 * return anything (a string, whose characters are no header names).
 */
export function vouchedBy (def: PluginDefinition, config: unknown): readonly string[] | string {
  if (def.vouchedHeaders === undefined) return []
  let names: unknown
  try {
    names = def.vouchedHeaders(config)
  } catch (err) {
    return `vouchedHeaders failed: ${describeThrown(err)}`
  }
  if (!Array.isArray(names)) return `vouchedHeaders must return an array of header names, not ${what(names)}`
  const bad = names.findIndex(n => typeof n !== 'string' || !HEADER_NAME.test(n))
  return bad === -1 ? names as string[] : `vouchedHeaders returned ${what(names[bad])} at [${bad}], not a header name`
}

/**
 * Whether a header the client sent (lower-case name) is one only the gateway may send: an identity
 * header, or one `vouched` (vouchedHeaders) holds, in either spelling. The gateway removes those
 * from every request before any plugin runs; a name whose first character none of them has (most
 * of a request's) costs one lookup.
 */
export function clientIdentityTest (vouched: ReadonlySet<string>): (name: string) => boolean {
  const first: boolean[] = []
  for (const name of [IDENTITY_PREFIX, ANONYMOUS_HEADER, ...vouched]) {
    first[name.charCodeAt(0)] = true
    if (name.startsWith('-')) first[95 /* _ */] = true
  }
  return name => {
    if (first[name.charCodeAt(0)] !== true) return false
    const d = dashed(name)
    return isIdentityForm(d) || vouched.has(d)
  }
}

// Consumers are frozen per config: their header values are encoded once.
interface Encoded { id: string, groups: string | undefined }
const encoded = new WeakMap<Consumer, Encoded>()

// req.locals key: the consumer the identity headers were last set for.
const IDENTIFIED = Symbol('portcullis.identified')
type Marked = Record<symbol, Consumer | undefined>

/**
 * Sets req.consumer and the identity headers the upstream gets: removes every identity header
 * (isIdentityHeader) the request holds (the client's were removed before any plugin ran: those an
 * earlier plugin set for another consumer), then sets x-consumer-id and x-consumer-groups (when the
 * consumer has groups), encoded as headerValue says; `undefined` leaves none. The gateway calls
 * it itself once a request hook has set req.consumer; an auth plugin calls it to add headers of
 * its own after them (x-anonymous-consumer).
 */
export function setIdentity (req: GatewayRequest, consumer: Consumer | undefined): void {
  const values = consumer === undefined ? undefined : valuesOf(req, consumer)
  const before = req.consumer
  req.consumer = consumer
  const headers = req.headers
  for (const name in headers) if (isIdentityHeader(name)) headers[name] = undefined
  // req.locals is made on first use: not for a request that never had a consumer.
  if (consumer === undefined || values === undefined) {
    if (before !== undefined) (req.locals as Marked)[IDENTIFIED] = undefined
    return
  }
  ;(req.locals as Marked)[IDENTIFIED] = consumer
  headers[CONSUMER_ID] = values.id
  if (values.groups !== undefined) headers[CONSUMER_GROUPS] = values.groups
}

/**
 * The consumer's header values. One that cannot be a header (a BigInt id from a database driver) is
 * the setting plugin's failure, and the request is left with no consumer at all: neither the
 * upstream, nor the access log, nor an onFinished observer sees one that was refused.
 */
function valuesOf (req: GatewayRequest, consumer: Consumer): Encoded {
  let values = encoded.get(consumer)
  if (values !== undefined) return values
  try {
    values = { id: headerValue(consumer.id), groups: consumer.groups.length === 0 ? undefined : headerValue(consumer.groups) }
  } catch (err) {
    setIdentity(req, undefined)
    throw err
  }
  encoded.set(consumer, values)
  return values
}

/**
 * The identity headers made to follow req.consumer when a plugin set it without setIdentity (as
 * any plugin may): run by the pipeline before each request hook and at the end of the phase.
 * A request without a consumer costs one read.
 */
export function followConsumer (req: GatewayRequest): void {
  const consumer = req.consumer
  if (consumer !== undefined && (req.locals as Marked)[IDENTIFIED] !== consumer) setIdentity(req, consumer)
}

// Sent as is: printable ASCII (and tabs) without `%`, not starting or ending with white space (which HTTP would trim).
const PLAIN = /^(?:[\x21-\x24\x26-\x7e](?:[\t\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?)?$/
const PLAIN_ITEM = /^(?:[\x21-\x24\x26-\x2b\x2d-\x7e](?:[\t\x20-\x24\x26-\x2b\x2d-\x7e]*[\x21-\x24\x26-\x2b\x2d-\x7e])?)?$/

// A lone UTF-16 surrogate (valid in a JWT's JSON: "\ud800") has no UTF-8, and encodeURIComponent throws
// on it: U+FFFD instead, as String.prototype.toWellFormed (ES2024, past this project's lib) makes it.
const LONE_SURROGATE = /\p{Surrogate}/gu
const encode = (text: string, plain: RegExp) => plain.test(text) ? text : encodeURIComponent(text.replace(LONE_SURROGATE, '\ufffd'))

/**
 * An identity or claim value as a header value the upstream can always read back with
 * decodeURIComponent: strings as they are unless they hold anything beyond printable ASCII, a `%`
 * or an edge space (then percent-encoded, a lone surrogate as U+FFFD); arrays joined with commas, each item with a comma
 * encoded too (so a group `a,admins` cannot pass for two); other values as JSON.
 */
export function headerValue (value: unknown): string {
  if (typeof value === 'string') return encode(value, PLAIN)
  if (Array.isArray(value) && value.every(v => typeof v === 'string')) return value.map(v => encode(v, PLAIN_ITEM)).join(',')
  return encode(typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value), PLAIN)
}
