import { LineCounter, parseDocument, visit, isPair, isScalar, isSeq, YAMLParseError, type Document } from 'yaml'
import { interpolate } from './interpolate.ts'
import { formatPath, type KeyPath } from './positions.ts'
import { keysAsWritten } from './written-text.ts'
import { hiddenAt } from './redact.ts'

/** The config's YAML document, read alike on the main thread and in the parse worker; its keys as written. */
export function readYaml (text: string): { doc: Document, lines: LineCounter } {
  const lines = new LineCounter()
  const doc = parseDocument(withoutBom(text), { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  // An unknown tag is only a warning to yaml, its value "" (an unquoted `token: !s3cret` was no
  // token at all, and the admin API open): an error here, said by syntaxIssue.
  const unknownTags = doc.warnings.filter(w => w.code === 'TAG_RESOLVE_FAILED')
  doc.errors.push(...unknownTags.map(w => new YAMLParseError(w.pos, w.code, w.message)))
  keysAsWritten(doc)
  return { doc, lines }
}

/** The text without a leading byte order mark, which yaml would count as a column of line 1 (editors do not). */
export function withoutBom (text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** A value that came from ${VAR}s: as written in the file, and as interpolated. */
export interface Interpolation { written: string, value: string }

/**
 * Replaces ${VAR}s in the document's values (interpolate); what `at` makes of each value naming an unset variable
 * or a malformed ${...}. `interpolated`, when given, gets the others, by their key path (formatPath);
 * `warn`, interpolate's warnings.
 */
export function interpolateDocument<T> (doc: Document, env: NodeJS.ProcessEnv, at: (p: KeyPath, m: string) => T,
  interpolated?: Map<string, Interpolation>, warn?: (p: KeyPath, m: string) => void): T[] {
  const issues: T[] = []
  visit(doc, {
    Scalar (key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return
      // Found only when needed: a list's index is looked for (thousands of consumers' `$scrypt$` hashes).
      let found: KeyPath | undefined
      const keyPath = (): KeyPath => (found ??= keyPathOf(path, node))
      const { value, problems, warnings } = interpolate(node.value, env, () => hiddenAt(keyPath().filter(k => typeof k === 'string')))
      for (const w of warnings) warn?.(keyPath(), w)
      if (problems.length === 0 && value === node.value && !node.value.includes('${')) return
      if (problems.length > 0) issues.push(at(keyPath(), problems.join('; ')))
      else interpolated?.set(formatPath(keyPath()), { written: node.value, value })
      node.value = value
    }
  })
  return issues
}

/** The key path of `node`, from the ancestors `visit` gives (its pairs and lists). */
export function keyPathOf (ancestors: readonly unknown[], node: unknown): KeyPath {
  const keys: Array<string | number> = []
  const chain = [...ancestors, node]
  for (let i = 0; i < chain.length - 1; i++) {
    const n = chain[i]
    if (isPair(n)) keys.push(String(isScalar(n.key) ? n.key.value : n.key))
    else if (isSeq(n)) keys.push(n.items.indexOf(chain[i + 1]))
  }
  return keys
}
