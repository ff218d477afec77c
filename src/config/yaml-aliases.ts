import { visit, type Document, type LineCounter } from 'yaml'
import type { ConfigIssue } from './config-error.ts'

/**
 * The config as plain data, or what its aliases make of it: an alias inside the node it names (an
 * endless config: the checks once overflowed the stack on it), or aliases that expand past yaml's
 * limit (a "billion laughs" file). Either once ended the load with a stack trace instead of a line.
 */
export function toData (doc: Document, lines: LineCounter, file: string): { data: unknown } | { issue: ConfigIssue } {
  const issue = (offset: number, message: string): { issue: ConfigIssue } => ({ issue: { file, ...lines.linePos(offset), path: '', message } })
  let cycle: { issue: ConfigIssue } | undefined
  let first: number | undefined
  visit(doc, {
    Alias (_key, node, path) {
      first ??= node.range?.[0]
      const target = node.resolve(doc)
      if (target !== undefined && path.includes(target)) {
        cycle = issue(node.range?.[0] ?? 0, `alias *${node.source} is inside the node &${node.source} it names: the config would never end`)
        return visit.BREAK
      }
      return undefined
    }
  })
  if (cycle !== undefined) return cycle
  try {
    return { data: doc.toJS() }
  } catch (err) {
    if (!(err instanceof ReferenceError) || first === undefined) throw err
    return issue(first, `aliases expand to too many copies (${err.message}): write the values out, or use fewer aliases`)
  }
}
