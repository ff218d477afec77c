import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml'
import { namesSecret, shownKey } from './redact.ts'

export type KeyPath = ReadonlyArray<string | number>

/**
 * What a config knows of its keys, for a key written with no value (shownKey): `keys`, those it
 * knows; `valued`, whether the key at a path is written with a value; `besideSecret`, whether another
 * key of the map it is in names a secret (unknown: no).
 */
export interface KnownKeys {
  readonly keys: ReadonlySet<string>
  readonly valued: (path: KeyPath) => boolean
  readonly besideSecret?: (path: KeyPath) => boolean
}

/** Per map node, its keys naming a secret: thousands of keys in one map are each told in linear time. */
const secretKeys = new WeakMap<YAMLMap, string[]>()

/** KnownKeys of `doc`, `keys` being those the config knows. */
export function documentKeys (doc: Document, keys: ReadonlySet<string>): KnownKeys {
  return {
    keys,
    valued: path => !doc.hasIn(path) || doc.getIn(path) != null,
    besideSecret: path => {
      const map = doc.getIn(path.slice(0, -1), true)
      if (!isMap(map)) return false
      let secret = secretKeys.get(map)
      if (secret === undefined) secretKeys.set(map, secret = map.items.map(keyText).filter(namesSecret))
      return secret.some(k => k !== path[path.length - 1])
    }
  }
}

/** Each key of `path`, as written and as a problem shows it (shownKey: one may hold a secret written without its colon). */
function shownKeys (path: KeyPath, known?: KnownKeys): Array<{ seg: string | number, shown: string }> {
  const parents: string[] = []
  return path.map((seg, i) => {
    if (typeof seg === 'number') return { seg, shown: `[${seg}]` }
    const at = path.slice(0, i + 1)
    const shown = printableKey(shownKey(parents, seg, () => known === undefined || known.valued(at) ? undefined : { known: known.keys, besideSecret: () => known.besideSecret?.(at) === true }))
    parents.push(seg)
    return { seg, shown }
  })
}

/**
 * `routes[1].match.path` from ['routes', 1, 'match', 'path']; keys as printableKey shows them, a
 * secret written into one hidden (`admin.token [redacted]`; with `known`, keys with no value the
 * config does not know, where shownKey hides them).
 */
export function formatPath (path: KeyPath, known?: KnownKeys): string {
  let out = ''
  for (const { seg, shown } of shownKeys(path, known)) out += typeof seg === 'number' || out === '' ? shown : `.${shown}`
  return out
}

/** `message` with the keys of `path` formatPath hides hidden as there (`no plugin "[redacted]" takes credentials`). */
export function hideKeys (path: KeyPath, message: string, known?: KnownKeys): string {
  let out = message
  for (const { seg, shown } of shownKeys(path, known)) {
    if (typeof seg === 'number' || shown === printableKey(seg)) continue
    // Where it is the whole word: a short key hidden under credentials (`a`) is also part of others.
    for (const written of new Set([seg, printableKey(seg)])) out = out.replace(new RegExp(`(?<![\\w-])${written.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')}(?![\\w-])`, 'g'), () => shown)
  }
  return out
}

/**
 * A key as a message shows it: its characters past ASCII (or invisible) escaped JSON-style. A
 * Cyrillic "о" or a zero-width space would make `unknown key "rоutes" (did you mean "routes"?)` look
 * like nonsense; "r\u043eutes" does not.
 */
export function printableKey (key: string): string {
  return key.replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * Line and column of a key path in the parsed YAML: the key itself when `at` is 'key'
 * (unknown keys), else its value. Falls back to the deepest node that exists.
 */
const keyText = (p: Pair): string => isScalar(p.key) ? String(p.key.value) : String(p.key)

/** Per map node, its pairs by key (the first of a repeated one): thousands of problems under one map are placed in linear time. */
const pairsByKey = new WeakMap<YAMLMap, Map<string, Pair>>()

/** The pair of `key` in `map` (the first, as a repeated key's problem is placed there). */
function pairOf (map: YAMLMap, key: string): Pair | undefined {
  if (map.items.length < 16) return map.items.find(p => keyText(p) === key)
  let byKey = pairsByKey.get(map)
  if (byKey === undefined) {
    byKey = new Map()
    for (const p of map.items) { const k = keyText(p); if (!byKey.has(k)) byKey.set(k, p) }
    pairsByKey.set(map, byKey)
  }
  return byKey.get(key)
}

export function locate (doc: Document, lines: LineCounter, path: KeyPath, at: 'key' | 'value' = 'value'): { line: number, col: number } {
  let node: unknown = doc.contents
  let offset = (node as Node | null)?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    if (isMap(node)) {
      const pair = pairOf(node, String(seg))
      if (pair === undefined) break
      const keyNode = pair.key as Node | null
      if (i === path.length - 1 && at === 'key' && keyNode?.range) { offset = keyNode.range[0]; break }
      node = pair.value
      offset = (node as Node | null)?.range?.[0] ?? keyNode?.range?.[0] ?? offset
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg]
      offset = (node as Node | null)?.range?.[0] ?? offset
    } else break
  }
  return lines.linePos(offset)
}
