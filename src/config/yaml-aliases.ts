import { isAlias, isCollection, isPair, isScalar, visit, type Alias, type Document, type LineCounter, type Node } from 'yaml'
import type { ConfigIssue } from './config-error.ts'
import { keyPathOf } from './yaml-document.ts'
import { formatPath } from './positions.ts'
import { hiddenAt } from './redact.ts'

/**
 * The most values the config may hold once its aliases are expanded: a million, or ten times the
 * values written if more. The checks and the schema walk every copy, so a "billion laughs" file
 * (aliases of aliases, each level ten times the one below) would take them hours; a thousand routes
 * aliasing one plugins map stay far below it. (yaml's own maxAliasCount counts aliases, not copies:
 * its default of 100 refused the 100th alias of a small map.)
 */
const MIN_EXPANDED = 1_000_000
const EXPANSION = 10

/**
 * The config as plain data, or what its aliases make of it: an alias inside the node it names (an
 * endless config: the checks once overflowed the stack on it), an alias of no anchor, or aliases
 * that expand past the limit above. Each once ended the load with a stack trace or a misleading line.
 * Also one issue, rather than "has no value" or the schema's cascade, for an empty file and a merge key.
 */
export function toData (doc: Document, lines: LineCounter, file: string): { data: unknown } | { issue: ConfigIssue } {
  const issue = (offset: number, message: string): { issue: ConfigIssue } => ({ issue: { file, ...lines.linePos(offset), path: '', message } })
  if (doc.contents === null) return issue(0, 'the file is empty: a config needs at least server, upstreams and routes')
  let found: { issue: ConfigIssue } | undefined
  let first: Alias | undefined
  // Each alias names the last anchor of its name before it, in document order (the order visit goes).
  const anchors = new Map<string, Node>()
  const targets = new Map<Alias, Node>()
  visit(doc, {
    Value (_key, node) {
      if (node.anchor !== undefined) anchors.set(node.anchor, node)
    },
    // YAML 1.2 has no merge keys: `<<` would be an unknown key, and the keys it was to bring in missing.
    // (yaml's `merge` option would merge them, but problems in merged keys could not be placed.)
    Pair (_key, pair) {
      if (!isScalar(pair.key) || pair.key.value !== '<<' || pair.key.type !== 'PLAIN') return undefined
      found = issue(pair.key.range?.[0] ?? 0, 'merge keys (<<) are not supported: put the anchor on a whole value and alias it (key: *name), or write the keys out')
      return visit.BREAK
    },
    Alias (_key, node, path) {
      first ??= node
      const target = anchors.get(node.source)
      if (target !== undefined && !path.includes(target)) {
        targets.set(node, target)
        return undefined
      }
      const at = node.range?.[0] ?? 0
      // `token: *s3cret` is an alias too: under a key GET /config hides, its name is not quoted back.
      const keys = keyPathOf(path, node)
      let message: string
      if (hiddenAt(keys.filter(k => typeof k === 'string'))) {
        message = `this alias ${target === undefined ? 'names no anchor above it (a value starting with * is an alias: quote it if it is text)' : 'is inside the node it names: the config would never end'}`
      } else if (target === undefined && anchoredLater(doc, node.source)) {
        message = `alias *${node.source} names no anchor above it: &${node.source} comes after it, and an anchor must come before its aliases`
      } else if (target === undefined) {
        // A path or a glob (`path: */api`) is more often meant than an alias.
        message = `alias *${node.source} names no anchor: a value starting with * is an alias; quote it if it is text ("*${node.source}")`
      } else {
        message = `alias *${node.source} is inside the node &${node.source} it names: the config would never end`
      }
      found = { issue: { ...issue(at, message).issue, path: formatPath(keys) } }
      return visit.BREAK
    }
  })
  if (found !== undefined) return found
  if (first !== undefined) {
    const { written, expanded } = valueCounts(doc.contents, targets)
    const limit = Math.max(MIN_EXPANDED, EXPANSION * written)
    if (expanded > limit) {
      return issue(first.range?.[0] ?? 0, `aliases expand the config to more than ${limit.toLocaleString('en-US')} values (${written.toLocaleString('en-US')} are written): write the values out, or use fewer aliases`)
    }
  }
  // The count above stands in for yaml's own alias limit.
  return { data: doc.toJS({ maxAliasCount: -1 }) }
}

/** Whether a node of the document has the anchor `name`. */
function anchoredLater (doc: Document, name: string): boolean {
  let found = false
  visit(doc, { Node (_key, node) { if (node.anchor === name) { found = true; return visit.BREAK } } })
  return found
}

/**
 * How many values (keys included) `root` holds as written, and with each alias counted as a copy of
 * its anchor's node. One walk in document order: an alias's anchor is always done before it is
 * reached (it comes before, and does not enclose it), so each anchored node is counted once.
 */
function valueCounts (root: Node, targets: ReadonlyMap<Alias, Node>): { written: number, expanded: number } {
  const counted = new Map<Node, number>()
  let written = 0
  const count = (node: unknown): number => {
    if (node === null) return 0
    written++
    if (isAlias(node)) return counted.get(targets.get(node) as Node) ?? 0
    let n = 1
    if (isCollection(node)) for (const item of node.items) n += isPair(item) ? count(item.key) + count(item.value) : count(item)
    if ((node as Node).anchor !== undefined) counted.set(node as Node, n)
    return n
  }
  const expanded = count(root)
  return { written, expanded }
}
