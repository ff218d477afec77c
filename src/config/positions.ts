import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml'

export type KeyPath = ReadonlyArray<string | number>

/** `routes[1].match.path` from ['routes', 1, 'match', 'path']. */
export function formatPath (path: KeyPath): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : (out === '' ? seg : `.${seg}`)
  return out
}

/**
 * Line and column of a key path in the parsed YAML: the key itself when `at` is 'key'
 * (unknown keys), else its value. Falls back to the deepest node that exists.
 */
export function locate (doc: Document, lines: LineCounter, path: KeyPath, at: 'key' | 'value' = 'value'): { line: number, col: number } {
  let node: unknown = doc.contents
  let offset = (node as Node | null)?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    if (isMap(node)) {
      const pair = node.items.find(p => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg))
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
