import { hash } from 'node:crypto'
import { ANONYMOUS_HEADER, type GatewayRequest } from '../../src/index.ts'
import { addressKey } from '../shared/address-key.ts'

/** Reads one key part from a request; undefined when the request lacks it or it is empty (then the client IP stands in). */
type Reader = (req: GatewayRequest) => string | undefined

/** Where auth plugins leave token claims for later plugins: req.locals.claims. */
const CLAIMS_LOCAL = 'claims'

const scalar = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined

/**
 * The consumer's id; none for the anonymous consumer an auth plugin admitted without credentials
 * (it marks it with x-anonymous-consumer): it is no one in particular, and counted by its id one
 * client would use up every anonymous client's quota. The gateway removes a client's own
 * x-anonymous-consumer whenever req.consumer is set, so only an auth plugin's mark is read.
 */
const consumerId = (req: GatewayRequest): string | undefined =>
  req.consumer === undefined || req.headers[ANONYMOUS_HEADER] === 'true' ? undefined : req.consumer.id

/**
 * A header's value, none when empty: sent empty (or as only commas, RFC 9110's empty list) by many
 * clients, it would be one counter for all of them.
 */
const EMPTY_LIST = /^[\s,]*$/
const headerValue = (v: string | string[] | undefined): string | undefined => {
  const s = Array.isArray(v) ? v.join(', ') : v
  return s === undefined || EMPTY_LIST.test(s) ? undefined : s
}

/**
 * A header as auth plugins read a credential in it: the scheme in any case, then spaces or tabs,
 * then the credentials, trimmed (RFC 9110 11.4). Every header, not only Authorization: a plugin may
 * read `x-token: Bearer T` too, and hashed as written `bearer T` or `Bearer<TAB>T` was a fresh
 * counter for the one token `Bearer T` had used up. Other values only merge spellings. The end is
 * trimmed by a loop: `(.*?)[ \t]*$` backtracked quadratically on a run of spaces (16 kB: 0.8 s).
 */
const SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]+/
const credentialsValue = (v: string | string[] | undefined): string | undefined => {
  const s = headerValue(v)
  if (s === undefined) return undefined
  const m = SCHEME.exec(s)
  if (m === null) return s
  let end = s.length
  while (end > m[0].length && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--
  return `${(m[1] as string).toLowerCase()} ${s.slice(m[0].length, end)}`
}

function reader (part: string, v6Prefix: number): Reader {
  if (part === 'consumer') return consumerId
  if (part === 'ip') return req => addressKey(req.clientIp, v6Prefix)
  if (part === 'route') return req => req.route.name
  const colon = part.indexOf(':')
  const name = part.slice(colon + 1)
  if (part.startsWith('header:')) {
    const header = name.toLowerCase()
    return req => credentialsValue(req.clientHeaders[header])
  }
  return req => {
    const v = scalar((req.locals[CLAIMS_LOCAL] as Record<string, unknown> | undefined)?.[name])
    // An empty claim is none, as an empty header is.
    return v === '' ? undefined : v
  }
}

// Separators and hash-tag braces are escaped so that no value can pose as two parts or move the tag,
// and # so that no value in clear can pose as a hashed one (or as the client IP standing in).
const SPECIAL = /[%|{}#]/
const SPECIAL_ALL = /[%|{}#]/g
const escape = (c: string) => `%${c.charCodeAt(0).toString(16)}`
// Long values (a header of kilobytes) are hashed: keys stay short in memory and in Redis.
const MAX_VALUE = 64

/** `#` and the value's SHA-256 in base64url: no separator, no brace, and never a value in clear. */
const hashed = (v: string): string => '#' + hash('sha256', v, 'base64url')

export function encodeValue (v: string): string {
  if (v.length > MAX_VALUE) return hashed(v)
  return SPECIAL.test(v) ? v.replace(SPECIAL_ALL, escape) : v
}

/**
 * A part: `encode` gives its value as keys hold it, `clear` says whether that is the value itself
 * (the key then shows it anyway), and `standIn` is the client IP standing in for a missing value.
 */
interface Part {
  readonly label: string
  readonly read: Reader
  readonly encode: (v: string) => string
  readonly clear: (v: string) => boolean
  readonly standIn: (req: GatewayRequest) => string
}

// Labels are escaped as values are (a header name may hold | or %, a claim name braces): the
// encoded parts then hold no brace, and make a Redis Cluster hash tag as they are. A header's
// name is matched in any case, so its label is lower-case: one header, one key.
const label = (part: string): string => encodeValue(part.startsWith('header:') ? part.toLowerCase() : part) + '='

/**
 * `part=value`, a missing value replaced by the client IP marked `#ip=`: no value in clear starts
 * with # and no hashed one holds =, so it never equals a real value, nor a limit by `ip` (whose
 * counter a request without a consumer would otherwise share under the same limit name).
 */
function encodePart (p: Part, req: GatewayRequest): string {
  const v = p.read(req)
  return v === undefined ? p.standIn(req) : p.label + p.encode(v)
}

/** `part=value|...` */
function encodeParts (parts: readonly Part[], req: GatewayRequest): string {
  let out = ''
  for (let i = 0; i < parts.length; i++) out += (i === 0 ? '' : '|') + encodePart(parts[i] as Part, req)
  return out
}

// The order of a limit's parts in its key: the part most particular to a client first (it makes the
// hash tag, so a consumer's counters gather on one node and clients spread over the cluster).
const RANK = (part: string): number =>
  part === 'consumer' ? 0 : part.startsWith('claim:') ? 1 : part.startsWith('header:') ? 2 : part === 'ip' ? 3 : 4

/** A limit's parts in key order: the same set of parts, written in any order, gives the same key. */
function ordered (by: readonly string[]): string[] {
  const labelled = by.map(p => ({ p, l: label(p) }))
  labelled.sort((a, b) => RANK(a.p) - RANK(b.p) || (a.l < b.l ? -1 : a.l > b.l ? 1 : 0))
  return labelled.filter((x, i) => i === 0 || x.l !== labelled[i - 1]?.l).map(x => x.p)
}

/**
 * The part whose value is a limit's Redis Cluster hash tag (see KeyBuilder). Limits with the same
 * slot part have their keys in one slot for every request, so they can be decided in one script.
 */
export const slotPart = (by: readonly string[]): string => label(ordered(by)[0] as string)

interface KeyParts { readonly tag: Part, readonly rest: readonly Part[] }

/**
 * Builds store keys `rl:{<first part>}:<limit>:<other parts>`, from each limit's own parts only:
 * the same limit has the same key on every route, whatever other limits the route has. The first
 * part (see RANK) is the Redis Cluster hash tag: different consumers spread over the cluster, and
 * a request's limits that share their first part share a slot.
 */
export class KeyBuilder {
  readonly #limits: KeyParts[]

  /** `byOfLimits`: each limit's key parts, in the limits' order; `v6Prefix`: see addressKey. */
  constructor (byOfLimits: ReadonlyArray<readonly string[]>, v6Prefix = 64) {
    // One Part per distinct part: limits reading the same part share it (see keysFor).
    const parts = new Map<string, Part>()
    const part = (p: string): Part => {
      const l = label(p)
      let made = parts.get(l)
      if (made === undefined) {
        // A header's value is always hashed: a header keyed on is often a credential (an API key),
        // which would otherwise sit in clear in the store (Redis KEYS, MONITOR, a dump).
        const header = p.startsWith('header:')
        const standIn = `${l}#ip=`
        parts.set(l, made = {
          label: l,
          read: reader(p, v6Prefix),
          encode: header ? hashed : encodeValue,
          clear: header ? () => false : v => v.length <= MAX_VALUE,
          standIn: req => standIn + encodeValue(addressKey(req.clientIp, v6Prefix))
        })
      }
      return made
    }
    this.#limits = byOfLimits.map(by => {
      const [first, ...rest] = ordered(by).map(part)
      // The schema asks for one part at least.
      if (first === undefined) throw new Error('rate-limit: a limit without key parts')
      return { tag: first, rest }
    })
  }

  /** The key of limit `index` (its position in the constructor's list), `id` being `<name>:<algorithm><window>`. */
  key (req: GatewayRequest, index: number, id: string): string {
    const { tag, rest } = this.#limits[index] as KeyParts
    const head = `rl:{${encodePart(tag, req)}}:${id}`
    return rest.length === 0 ? head : `${head}:${encodeParts(rest, req)}`
  }

  /** The keys of a request for some of the limits (a plan's), in their order. */
  keys (req: GatewayRequest, limits: readonly KeyedLimit[]): string[] {
    const keys: string[] = []
    for (let i = 0; i < limits.length; i++) keys.push(this.key(req, (limits[i] as KeyedLimit).index, (limits[i] as KeyedLimit).id))
    return keys
  }

  /**
   * A function giving a request's keys for `limits`. When every key hangs on one part (the usual
   * `by: [consumer]` or `[ip]`), they are remembered by its value (or the client IP standing in for
   * it), so a client's requests reuse one set of strings: nothing is built or escaped again. Only
   * values the keys show in clear are: not a header's (often a credential, held no longer than its
   * request) nor one longer than 64 characters (kilobytes each), so the memo stays small.
   */
  keysFor (limits: readonly KeyedLimit[]): (req: GatewayRequest) => readonly string[] {
    const parts = new Set(limits.flatMap(l => {
      const k = this.#limits[l.index] as KeyParts
      return [k.tag, ...k.rest]
    }))
    const only = parts.size === 1 ? [...parts][0] as Part : undefined
    if (only === undefined) return req => this.keys(req, limits)
    const byValue = new Map<string, readonly string[]>()
    const byIp = new Map<string, readonly string[]>()
    return req => {
      const v = only.read(req)
      if (v !== undefined && !only.clear(v)) return this.keys(req, limits)
      const memo = v === undefined ? byIp : byValue
      const at = v ?? req.clientIp
      let keys = memo.get(at)
      if (keys === undefined) {
        // Bounded: past MEMO_MAX values the memo starts again (cheaper than keeping an LRU order).
        if (memo.size >= MEMO_MAX) memo.clear()
        memo.set(at, keys = this.keys(req, limits))
      }
      return keys
    }
  }
}

/** What the key builder needs of a limit. */
export interface KeyedLimit { readonly index: number, readonly id: string }

/** Values whose keys are remembered, per plan and per kind (a part's value, or the client IP). */
const MEMO_MAX = 1024
