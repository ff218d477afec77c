import { isAlias, isCollection, isMap, isScalar, isSeq, visit, type Document } from 'yaml'
import type { KeyPath } from './positions.ts'

/**
 * A number or boolean whose text in the file is not how JavaScript writes its value (1.10, 007,
 * 1e3, 0o17, TRUE, 12345678901234567890123): where it is, and that text. Where the schema wants a
 * string, validation takes the text as written, not String(value) ("1.1", "7", "1000", "15").
 */
export type WrittenScalar = [path: KeyPath, text: string]

/** Map keys as written: `007:` is the key "007", not "7" (a key is always a string in the config). */
export function keysAsWritten (doc: Document): void {
  visit(doc, {
    Pair (_key, pair) {
      const key = pair.key
      if (isScalar(key) && (typeof key.value === 'number' || typeof key.value === 'boolean') && key.source !== undefined) key.value = key.source
    }
  })
}

/**
 * The document's numbers and booleans written otherwise than String(value), an alias's at each of
 * its places. Only for a document toData accepted: each alias names an anchor before it, not around it.
 */
export function writtenScalars (doc: Document): WrittenScalar[] {
  const out: WrittenScalar[] = []
  const path: Array<string | number> = []
  // The anchors met so far, in document order (yaml's Alias.resolve would walk the document for each alias).
  const anchors = new Map<string, unknown>()
  let aliased = 0
  const walk = (node: unknown): void => {
    if (isAlias(node)) {
      aliased++
      walk(anchors.get(node.source))
      aliased--
      return
    }
    // Inside an alias's copy, the anchors are those of the copied node, already met.
    if (aliased === 0 && (isScalar(node) || isCollection(node)) && node.anchor !== undefined) anchors.set(node.anchor, node)
    if (isScalar(node)) {
      const v = node.value
      if ((typeof v === 'number' || typeof v === 'boolean') && node.source !== undefined && node.source !== String(v)) out.push([[...path], node.source])
    } else if (isMap(node)) {
      for (const pair of node.items) {
        path.push(String(isScalar(pair.key) ? pair.key.value : pair.key))
        walk(pair.value)
        path.pop()
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => { path.push(i); walk(item); path.pop() })
    }
  }
  walk(doc.contents)
  return out
}

/**
 * Per object or array of the config data, the text of its numbers and booleans written otherwise.
 * Keyed by the object, so that validation finds it in any part of the config (a plugin's, checked
 * on its own), and it goes with the config.
 */
const texts = new WeakMap<object, Map<string | number, string>>()

/** Records `written` (from writtenScalars of the document `data` was read from) for writtenText. */
export function keepWritten (data: unknown, written: readonly WrittenScalar[]): void {
  for (const [path, text] of written) {
    let holder = data
    for (const seg of path.slice(0, -1)) holder = (holder as Record<string | number, unknown> | null)?.[seg]
    if (typeof holder !== 'object' || holder === null) continue
    let byKey = texts.get(holder)
    if (byKey === undefined) texts.set(holder, byKey = new Map())
    byKey.set(path[path.length - 1] as string | number, text)
  }
}

/** How the number or boolean at holder[key] was written, when not as String(value). */
export function writtenText (holder: object, key: string | number): string | undefined {
  return texts.get(holder)?.get(key)
}
