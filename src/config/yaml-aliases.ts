import { isScalar, visit, type Document, type LineCounter } from 'yaml'
import type { ConfigIssue } from './config-error.ts'

/**
 * The config as plain data, or what its aliases make of it: an alias inside the node it names (an
 * endless config: the checks once overflowed the stack on it), or aliases that expand past yaml's
 * limit (a "billion laughs" file). Either once ended the load with a stack trace instead of a line.
 * Also one issue, rather than "has no value" or the schema's cascade, for an empty file and a merge key.
 */
export function toData (doc: Document, lines: LineCounter, file: string): { data: unknown } | { issue: ConfigIssue } {
  const issue = (offset: number, message: string): { issue: ConfigIssue } => ({ issue: { file, ...lines.linePos(offset), path: '', message } })
  if (doc.contents === null) return issue(0, 'the file is empty: a config needs at least server, upstreams and routes')
  let found: { issue: ConfigIssue } | undefined
  let first: number | undefined
  visit(doc, {
    // YAML 1.2 has no merge keys: `<<` would be an unknown key, and the keys it was to bring in missing.
    // (yaml's `merge` option would merge them, but problems in merged keys could not be placed.)
    Pair (_key, pair) {
      if (!isScalar(pair.key) || pair.key.value !== '<<' || pair.key.type !== 'PLAIN') return undefined
      found = issue(pair.key.range?.[0] ?? 0, 'merge keys (<<) are not supported: put the anchor on a whole value and alias it (key: *name), or write the keys out')
      return visit.BREAK
    },
    Alias (_key, node, path) {
      first ??= node.range?.[0]
      const target = node.resolve(doc)
      if (target !== undefined && path.includes(target)) {
        found = issue(node.range?.[0] ?? 0, `alias *${node.source} is inside the node &${node.source} it names: the config would never end`)
        return visit.BREAK
      }
      return undefined
    }
  })
  if (found !== undefined) return found
  try {
    return { data: doc.toJS() }
  } catch (err) {
    if (!(err instanceof ReferenceError) || first === undefined) throw err
    return issue(first, `aliases expand to too many copies (${err.message}): write the values out, or use fewer aliases`)
  }
}
