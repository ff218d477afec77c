import type { LineCounter, YAMLError } from 'yaml'
import type { ConfigIssue } from './config-error.ts'
import { withoutBom } from './yaml-document.ts'
import { printableKey } from './positions.ts'

/**
 * One issue for a YAML syntax mistake, however many errors the parser cascades into, placed where
 * the mistake is, with a hint when the cause is a common one: an unquoted ${VAR} inside { } or [ ],
 * a tab, a key indented differently from its siblings, a duplicated key, a second document.
 */
export function syntaxIssue (errors: readonly YAMLError[], original: string, lines: LineCounter, file: string): ConfigIssue {
  const first = errors[0] as YAMLError
  // The text readYaml parsed, which the errors' positions are in.
  const text = withoutBom(original)
  const source = text.split('\n')
  const issue = (offset: number, message: string): ConfigIssue => ({ file, ...lines.linePos(offset), path: '', message })
  const lineStart = (line: number) => source.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0)
  const at = (line: number, col: number, message: string): ConfigIssue => issue(lineStart(line) + col - 1, message)

  const tab = errors.find(e => e.code === 'TAB_AS_INDENT')
  if (tab !== undefined) return issue(tab.pos[0], 'a tab in the indentation: YAML indents with spaces only')

  const { line } = lines.linePos(first.pos[0])
  // `port: ${PORT}` inside { } or [ ]: the `{` of `${` opens a nested map there.
  const unquoted = /^[^#"']*[{[][^#"']*?(\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\})/.exec(source[line - 1] ?? '')
  if (unquoted !== null) {
    const ref = unquoted[1] as string
    return at(line, (unquoted.index ?? 0) + unquoted[0].length - ref.length + 1, `${ref} inside { } or [ ] must be quoted: "${ref}" (YAML reads its "{" as the start of a map)`)
  }

  if (first.code === 'MULTIPLE_DOCS') {
    return issue(first.pos[0], 'a config file holds one YAML document: this "---" starts a second one (remove it, or move what follows to a file of its own)')
  }

  if (first.code === 'DUPLICATE_KEY') {
    // After a key with no value, yaml places the error at that empty value, before the line break.
    const start = first.pos[0] + (/^(?:\s|#.*)*/.exec(text.slice(first.pos[0]))?.[0].length ?? 0)
    const key = /^["']?([^"':\s]+)/.exec(text.slice(start))?.[1] ?? '?'
    return issue(start, `key "${printableKey(key)}" appears twice in the same map: keep one`)
  }

  // A key one space left of its siblings in a list item reads as a sequence item without "-".
  if (first.code === 'BAD_INDENT' || first.code === 'MULTILINE_IMPLICIT_KEY' || first.message.startsWith('Nested mappings') ||
    (first.code === 'MISSING_CHAR' && first.message.startsWith('Sequence item without'))) {
    const misplaced = misindentedKey(source, line)
    if (misplaced !== undefined) return at(misplaced.line, misplaced.indent + 1, misplaced.message)
  }
  return issue(first.pos[0], first.message.split('\n')[0] as string)
}

interface KeyLine { line: number, indent: number, key: string }

/** The first key line at or after `from - 1` whose indentation matches neither its previous sibling nor a child of it. */
function misindentedKey (source: string[], from: number): { line: number, indent: number, message: string } | undefined {
  const keys: KeyLine[] = []
  source.forEach((text, i) => {
    const m = /^( *(?:- +)?)([A-Za-z0-9_.-]+|"[^"]*"|'[^']*'):(\s|$)/.exec(text)
    if (m !== null) keys.push({ line: i + 1, indent: (m[1] as string).length, key: m[2] as string })
  })
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i] as KeyLine
    const prev = keys[i - 1] as KeyLine
    if (k.line < from - 1) continue
    const opensBlock = /:\s*(#.*)?$/.test(source[prev.line - 1] ?? '')
    if (k.indent > prev.indent && !opensBlock) {
      return { line: k.line, indent: k.indent, message: `"${k.key}" is indented more than "${prev.key}" above it (${k.indent} spaces, not ${prev.indent}): align it, or give "${prev.key}" no value on its line` }
    }
    if (k.indent < prev.indent) {
      const sibling = keys.slice(0, i).reverse().find(s => s.indent <= k.indent)
      if (sibling !== undefined && sibling.indent !== k.indent) {
        return { line: k.line, indent: k.indent, message: `"${k.key}" is indented ${k.indent} spaces, which matches no key above it ("${prev.key}" has ${prev.indent}, "${sibling.key}" ${sibling.indent}): check the indentation of "${k.key}"` }
      }
    }
  }
  return undefined
}
