import type { Consumer, HeaderMap } from '../../../src/index.ts'

/** Headers the gateway sets for the upstream; whatever the client sent under these names is removed first. */
const CONSUMER_ID = 'x-consumer-id'
const CONSUMER_GROUPS = 'x-consumer-groups'
export const ANONYMOUS = 'x-anonymous-consumer'
export const IDENTITY_HEADERS = [CONSUMER_ID, CONSUMER_GROUPS, ANONYMOUS] as const

// Consumers are frozen per config: their groups header is joined once.
const groupsHeader = new WeakMap<Consumer, string>()

/** Sets x-consumer-id and x-consumer-groups (when the consumer has groups). */
export function setIdentity (headers: HeaderMap, consumer: Consumer): void {
  headers[CONSUMER_ID] = consumer.id
  if (consumer.groups.length === 0) return
  let groups = groupsHeader.get(consumer)
  if (groups === undefined) groupsHeader.set(consumer, groups = consumer.groups.join(','))
  headers[CONSUMER_GROUPS] = groups
}

/** Header values must not carry control characters or characters beyond Latin-1: others are percent-encoded. */
export function headerValue (value: unknown): string {
  const text = typeof value === 'string' ? value
    : Array.isArray(value) && value.every(v => typeof v === 'string') ? value.join(',')
      : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value)
  return /^[\t\x20-\x7e]*$/.test(text) ? text : encodeURIComponent(text)
}
