import { LineCounter, parseDocument, visit, isPair, isScalar, isSeq, type Document } from 'yaml'
import { interpolate } from './interpolate.ts'
import type { KeyPath } from './positions.ts'

/** The config's YAML document, read alike on the main thread and in the parse worker. */
export function readYaml (text: string): { doc: Document, lines: LineCounter } {
  const lines = new LineCounter()
  return { doc: parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true }), lines }
}

/** Replaces ${VAR}s in the document's values; what `at` makes of each value naming an unset variable or a malformed ${...}. */
export function interpolateDocument<T> (doc: Document, env: NodeJS.ProcessEnv, at: (p: KeyPath, m: string) => T): T[] {
  const issues: T[] = []
  visit(doc, {
    Scalar (key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return
      const { value, problems } = interpolate(node.value, env)
      if (problems.length > 0) {
        const keyPath: Array<string | number> = []
        const chain = [...path, node]
        for (let i = 0; i < chain.length - 1; i++) {
          const n = chain[i]
          if (isPair(n)) keyPath.push(String(isScalar(n.key) ? n.key.value : n.key))
          else if (isSeq(n)) keyPath.push(n.items.indexOf(chain[i + 1]))
        }
        issues.push(at(keyPath, problems.join('; ')))
      }
      node.value = value
    }
  })
  return issues
}
