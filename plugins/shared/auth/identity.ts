import type { Consumer, HeaderMap } from '../../../src/index.ts'

/** Headers the gateway sets for the upstream; whatever the client sent under these names is removed first. */
const CONSUMER_ID = 'x-consumer-id'
const CONSUMER_GROUPS = 'x-consumer-groups'
export const ANONYMOUS = 'x-anonymous-consumer'
export const IDENTITY_HEADERS = [CONSUMER_ID, CONSUMER_GROUPS, ANONYMOUS] as const
/** Every client header under this prefix is removed too (x-consumer-username...): an upstream may trust any of them. */
export const IDENTITY_PREFIX = 'x-consumer-'

// Consumers are frozen per config: their header values are encoded once.
const encoded = new WeakMap<Consumer, { id: string, groups: string | undefined }>()

/** Sets x-consumer-id and x-consumer-groups (when the consumer has groups), encoded as headerValue says. */
export function setIdentity (headers: HeaderMap, consumer: Consumer): void {
  let values = encoded.get(consumer)
  if (values === undefined) {
    values = { id: headerValue(consumer.id), groups: consumer.groups.length === 0 ? undefined : headerValue(consumer.groups) }
    encoded.set(consumer, values)
  }
  headers[CONSUMER_ID] = values.id
  if (values.groups !== undefined) headers[CONSUMER_GROUPS] = values.groups
}

// Sent as is: printable ASCII (and tabs) without `%`, not starting or ending with white space (which HTTP would trim).
const PLAIN = /^(?:[\x21-\x24\x26-\x7e](?:[\t\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?)?$/
const PLAIN_ITEM = /^(?:[\x21-\x24\x26-\x2b\x2d-\x7e](?:[\t\x20-\x24\x26-\x2b\x2d-\x7e]*[\x21-\x24\x26-\x2b\x2d-\x7e])?)?$/

const encode = (text: string, plain: RegExp) => plain.test(text) ? text : encodeURIComponent(text)

/**
 * An identity or claim value as a header value the upstream can always read back with
 * decodeURIComponent: strings as they are unless they hold anything beyond printable ASCII, a `%`
 * or an edge space (then percent-encoded); arrays joined with commas, each item with a comma
 * encoded too (so a group `a,admins` cannot pass for two); other values as JSON.
 */
export function headerValue (value: unknown): string {
  if (typeof value === 'string') return encode(value, PLAIN)
  if (Array.isArray(value) && value.every(v => typeof v === 'string')) return value.map(v => encode(v, PLAIN_ITEM)).join(',')
  return encode(typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value), PLAIN)
}
