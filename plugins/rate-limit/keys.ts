import { createHash } from 'node:crypto'
import type { GatewayRequest } from '../../src/index.ts'

/** Reads one key part from a request; undefined when the request lacks it (then the client IP stands in). */
type Reader = (req: GatewayRequest) => string | undefined

/** Where auth plugins leave token claims for later plugins: req.locals.claims. */
const CLAIMS_LOCAL = 'claims'

const scalar = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined

function reader (part: string): Reader {
  if (part === 'consumer') return req => req.consumer?.id
  if (part === 'ip') return req => req.clientIp
  if (part === 'route') return req => req.route.name
  const colon = part.indexOf(':')
  const name = part.slice(colon + 1)
  if (part.startsWith('header:')) {
    const header = name.toLowerCase()
    return req => {
      const v = req.clientHeaders[header]
      return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v
    }
  }
  return req => scalar((req.locals[CLAIMS_LOCAL] as Record<string, unknown> | undefined)?.[name])
}

// Separators and hash-tag braces are escaped so that no value can pose as two parts or move the tag.
const SPECIAL = /[%|{}]/
const SPECIAL_ALL = /[%|{}]/g
const escape = (c: string) => `%${c.charCodeAt(0).toString(16)}`
// Long values (a header of kilobytes) are hashed: keys stay short in memory and in Redis.
const MAX_VALUE = 64

export function encodeValue (v: string): string {
  if (v.length > MAX_VALUE) return '#' + createHash('sha256').update(v).digest('base64url')
  return SPECIAL.test(v) ? v.replace(SPECIAL_ALL, escape) : v
}

interface Part { readonly label: string, readonly read: Reader }

// Labels are escaped as values are (a header name may hold | or %, a claim name braces): the
// encoded parts then hold no brace, and make a Redis Cluster hash tag as they are.
const compileParts = (parts: readonly string[]): Part[] => parts.map(p => ({ label: encodeValue(p) + '=', read: reader(p) }))

/** `part=value|...`, each missing value replaced by the client IP (labelled ip=, so it never equals a real value). */
function encodeParts (parts: readonly Part[], req: GatewayRequest): string {
  let out = ''
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as Part
    const v = p.read(req)
    out += (i === 0 ? '' : '|') + (v === undefined ? 'ip=' + encodeValue(req.clientIp) : p.label + encodeValue(v))
  }
  return out
}

/**
 * Builds store keys `rl:{<shared parts>}:<limit>:<rest>`. The Redis Cluster hash tag holds the key
 * parts every limit of the route has in common, so one request's keys share a slot (one script
 * call) while different consumers spread over the cluster. With no part in common the tag is the
 * constant "all": every key in one slot.
 */
export class KeyBuilder {
  readonly #shared: Part[]
  readonly #rest: Part[][]

  /** `byOfLimits`: each limit's key parts, in the limits' order. */
  constructor (byOfLimits: ReadonlyArray<readonly string[]>) {
    const first = byOfLimits[0] ?? []
    const common = first.filter(p => byOfLimits.every(by => by.includes(p)))
    this.#shared = compileParts(common)
    this.#rest = byOfLimits.map(by => compileParts(by.filter(p => !common.includes(p))))
  }

  /** The hash tag of a request, computed once for all its keys. */
  tag (req: GatewayRequest): string {
    return this.#shared.length === 0 ? '{all}' : '{' + encodeParts(this.#shared, req) + '}'
  }

  /** The key of limit `index` (its position in the constructor's list), `id` being `<name>:<algorithm><window>`. */
  key (req: GatewayRequest, tag: string, index: number, id: string): string {
    const rest = this.#rest[index] as Part[]
    return rest.length === 0 ? `rl:${tag}:${id}` : `rl:${tag}:${id}:${encodeParts(rest, req)}`
  }

  /** The keys of a request for some of the limits (a plan's), in their order. */
  keys (req: GatewayRequest, limits: readonly KeyedLimit[]): string[] {
    const tag = this.tag(req)
    const keys: string[] = []
    for (let i = 0; i < limits.length; i++) keys.push(this.key(req, tag, (limits[i] as KeyedLimit).index, (limits[i] as KeyedLimit).id))
    return keys
  }

  /**
   * A function giving a request's keys for `limits`. When every key hangs on one part (the usual
   * `by: [consumer]` or `[ip]`), they are remembered by its value (or the client IP standing in for
   * it), so a client's requests reuse one set of strings: nothing is built or hashed again.
   */
  keysFor (limits: readonly KeyedLimit[]): (req: GatewayRequest) => readonly string[] {
    const parts = new Set([...this.#shared, ...limits.flatMap(l => this.#rest[l.index] ?? [])])
    const only = parts.size === 1 ? [...parts][0] as Part : undefined
    if (only === undefined) return req => this.keys(req, limits)
    const byValue = new Map<string, readonly string[]>()
    const byIp = new Map<string, readonly string[]>()
    return req => {
      const v = only.read(req)
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
