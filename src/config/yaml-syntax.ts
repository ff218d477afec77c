import { isAlias, isScalar, isSeq, visit, type Document, type LineCounter, type Node, type Scalar, type YAMLError, type YAMLMap } from 'yaml'
import type { ConfigIssue } from './config-error.ts'
import { keyPathOf, withoutBom } from './yaml-document.ts'
import { formatPath, hideKeys, printableKey, type KeyPath, type KnownKeys } from './positions.ts'
import { hiddenAt } from './redact.ts'
import { hideUrlSecrets } from './url-userinfo.ts'

/**
 * One issue for a YAML syntax mistake, however many errors the parser cascades into, placed where
 * the mistake is, with a hint when the cause is a common one: an unquoted ${VAR} inside { } or [ ],
 * a tab, a key indented differently from its siblings, a duplicated key, a second document, a quote
 * never closed, a Windows path's `\` in double quotes, a key glued to its value, a value starting
 * with ! or > read as a tag or a block scalar, a key without its colon, a comma missing in { }, a
 * list item without its "- " or with no space after its "-". Never a piece of the file's text yaml's
 * message quotes. `keys`: the keys the config knows (schemaKeys), for a key written without its colon.
 */
export function syntaxIssue (errors: readonly YAMLError[], doc: Document, original: string, lines: LineCounter, file: string, keys: ReadonlySet<string> = new Set()): ConfigIssue {
  const first = errors[0] as YAMLError
  // The text readYaml parsed, which the errors' positions are in.
  const text = withoutBom(original)
  const source = text.split('\n')
  const issue = (offset: number, message: string): ConfigIssue => ({ file, ...lines.linePos(offset), path: '', message })
  const lineStart = (line: number) => source.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0)
  const at = (line: number, col: number, message: string): ConfigIssue => issue(lineStart(line) + col - 1, message)
  // Where yaml fails, a key may be a secret missing its colon (`SECRET` alone on its line): none is taken as having a value.
  const known: KnownKeys = { keys, valued: () => false }
  // At the key `written` matched on `line` (its indent, then the key), which yaml read as part of a longer key: that one's path, with this key.
  const keyWithoutColon = (line: number, written: RegExpExecArray, message: string | ((path: KeyPath) => string)): ConfigIssue => {
    const offset = lineStart(line) + (written[1] as string).length
    const key = nodeAt(doc, n => isScalar(n) && n.range?.[0] === offset)
    const path = key === undefined ? undefined : [...key.path.slice(0, -1), written[2] as string]
    const said = typeof message === 'string' ? message : message(path ?? [written[2] as string])
    return path === undefined ? { ...issue(offset, said), path: '' } : { ...issue(offset, hideKeys(path, said, known)), path: formatPath(path, known) }
  }

  const tab = errors.find(e => e.code === 'TAB_AS_INDENT')
  if (tab !== undefined) return issue(tab.pos[0], 'a tab in the indentation: YAML indents with spaces only')

  // `path: *`: an alias with no name.
  if (first.code === 'BAD_ALIAS') {
    const alias = nodeAt(doc, n => isAlias(n) && n.range?.[0] === first.pos[0])
    return { ...issue(first.pos[0], 'a value starting with * is an alias, and * alone names none: quote it if it is text ("*")'), path: alias === undefined ? '' : formatPath(alias.path) }
  }

  const { line } = lines.linePos(first.pos[0])
  // `port: ${PORT}` inside { } or [ ]: the `{` of `${` opens a nested map there.
  const unquoted = /^[^#"']*[{[][^#"']*?(\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\})/.exec(source[line - 1] ?? '')
  if (unquoted !== null) {
    const written = unquoted[1] as string
    // A default under a secret's key (`password: ${DB_PW:-...}`) is the secret: its keys on the line tell.
    const keys = [...unquoted[0].slice(0, -written.length).matchAll(/([\w.-]+)\s*:/g)].map(m => m[1] as string)
    const ref = hiddenAt(keys) ? written.replace(/^(\$\{\w+:?[-?]).+\}$/s, '$1...}') : written
    return at(line, (unquoted.index ?? 0) + unquoted[0].length - written.length + 1, `${ref} inside { } or [ ] must be quoted: "${ref}" (YAML reads its "{" as the start of a map)`)
  }

  if (first.code === 'MULTIPLE_DOCS') {
    return issue(first.pos[0], 'a config file holds one YAML document: this "---" starts a second one (remove it, or move what follows to a file of its own)')
  }

  if (first.code === 'DUPLICATE_KEY') {
    // After a key with no value, yaml places the error at that empty value, before the line break.
    const start = first.pos[0] + (/^(?:\s|#.*)*/.exec(text.slice(first.pos[0]))?.[0].length ?? 0)
    const key = /^["']?([^"':\s]+)/.exec(text.slice(start))?.[1] ?? '?'
    const twice = repeatedKey(doc, start)
    const before = twice === undefined ? '' : ` (first on line ${lines.linePos(twice.first).line})`
    // A list item's first key again: maybe the next item, written without its "- "; maybe a genuine repeat.
    const fix = twice?.restartsItem === true ? `keep one, or, if a "- " went missing before line ${lines.linePos(start).line}, add it to start a new item` : 'keep one'
    const said = `key "${printableKey(key)}" appears twice in the same map${before}: ${fix}`
    return { ...issue(start, twice === undefined ? said : hideKeys(twice.keys, said, known)), path: twice === undefined ? '' : formatPath(twice.keys, known) }
  }

  // yaml says where the next line starts: the `{` or `[` that opened the collection is the mistake.
  // `keyValue`: only one opening a key's value on its line (`server: [`).
  const neverClosed = (error: YAMLError | undefined, keyValue: boolean, before = Infinity): ConfigIssue | undefined => {
    const flow = error?.code === 'BAD_INDENT' ? FLOW_UNENDED.exec(error.message) : null
    if (error === undefined || flow === null) return undefined
    const [open, close] = flow[1] === 'map' ? ['{', '}'] : ['[', ']']
    const opened = unclosed(source, lines.linePos(error.pos[0]), open, close)
    if (opened === undefined || (keyValue && !/:\s+$/.test((source[opened.line - 1] ?? '').slice(0, opened.col - 1)))) return undefined
    const offset = lineStart(opened.line) + opened.col - 1
    if (offset >= before) return undefined
    const node = nodeAt(doc, n => n.range?.[0] === offset)
    const said = `this ${open} is never closed: close it with ${close} (YAML reads on until it finds one, and the next line cannot be inside it)`
    return { ...issue(offset, said), path: node === undefined ? '' : formatPath(node.path) }
  }
  const flowFirst = neverClosed(first, false)
  if (flowFirst !== undefined) return flowFirst

  // yaml says where the file ends: the quote that opened the value is the mistake.
  if (first.code === 'MISSING_CHAR' && /^Missing closing ["']quote/.test(first.message)) {
    const open = quotedAt(doc, first.pos[0], true)?.node
    const quote = open?.type === 'QUOTE_DOUBLE' ? '"' : "'"
    if (open?.range != null) return issue(open.range[0], `this ${quote} is never closed: close it (YAML reads on to the next ${quote} or the end of the file)`)
  }

  if (first.code === 'BAD_DQ_ESCAPE') {
    // Only a Windows path is quoted back, and never at a key GET /config hides: a secret may look like one.
    const quoted = quotedAt(doc, first.pos[0], false)
    const range = quoted?.node.range
    const written = range == null ? '' : text.slice(range[0] + 1, range[1]).replace(/"\s*$/, '')
    const secret = quoted === undefined || hiddenAt(quoted.path.filter(k => typeof k === 'string'))
    const path = !secret && /^[\w\\ .:-]*\\[\w\\ .-]*$/.test(written) && /^(?:[A-Za-z]:|\.{0,2}\\)|\.[A-Za-z]\w*$/.test(written)
    const instead = path ? `'${written}' (single quotes) or "${written.replace(/\\/g, '/')}"` : 'single quotes, or / in a path'
    const escape = first.message.split('\n')[0] as string
    // The escape itself is part of the value: of a secret's, only that there is one.
    const said = secret ? 'Invalid escape sequence' : escape
    return { ...issue(first.pos[0], `${said}: in double quotes \\ starts an escape; write ${instead}`), path: quoted === undefined ? '' : formatPath(quoted.path) }
  }

  // `token: !s3cret`, `token: >s3cret`: a tag, a block scalar's header. yaml's message quotes the text, maybe a secret.
  const tag = first.code === 'TAG_RESOLVE_FAILED'
  if (tag || /^Block scalar header includes/.test(first.message)) {
    const value = tag ? nodeAt(doc, n => n.tag !== undefined && (n.range?.[0] ?? -1) >= first.pos[1]) : nodeAt(doc, n => isScalar(n) && n.range != null && n.range[0] <= first.pos[0] && first.pos[0] < n.range[1])
    const said = tag ? 'a tag YAML cannot resolve: a value starting with ! is a YAML tag (quote the value if it is text)' : 'a value starting with | or > is a block scalar, whose header holds only + or - and a digit: quote the value if it is text'
    return { ...issue(tag ? first.pos[0] : value?.node.range?.[0] ?? first.pos[0], said), path: value === undefined ? '' : formatPath(value.path) }
  }

  // `upstream:users`: without a space after the colon, it is one plain word, not a key and a value.
  const glued = /^(\s*(?:-\s+)?)([A-Za-z0-9_.-]+):(?!\/\/)\S/.exec(source[line - 1] ?? '')
  if (glued !== null && (first.code === 'MULTILINE_IMPLICIT_KEY' || first.message.startsWith('Implicit map keys need to be followed by map values'))) {
    return at(line, (glued[1] as string).length + 1, `a space is missing after "${glued[2] as string}:" (YAML reads key:value as one word)`)
  }

  // `upstream up`: yaml reads the line as one plain word, a key with no value (or going on to the next
  // line). Only for a key the config knows and a one-word value, where yaml fails: the next line of a
  // plain text, indented as its key, reads so too.
  const spaced = /^(\s*(?:-\s+)?)([A-Za-z_][A-Za-z0-9_-]*) +([^\s#'"[\]{}&*!|>%@`,]\S*)\s*(?:#.*)?$/.exec(source[line - 1] ?? '')
  if (spaced !== null && keys.has(spaced[2] as string) && !(spaced[3] as string).endsWith(':') && first.pos[0] === lineStart(line) + (spaced[1] as string).length &&
    (first.code === 'MULTILINE_IMPLICIT_KEY' || first.message.startsWith('Implicit map keys need to be followed by map values'))) {
    const [, , key, value] = spaced as unknown as [string, string, string, string]
    return keyWithoutColon(line, spaced, path => {
      // Never a secret's value: GET /config would hide it.
      const shown = hiddenAt(path.filter(k => typeof k === 'string')) ? `${key}: followed by its value` : `${key}: ${hideUrlSecrets(value)}`
      return `"${key}" has no ":" after it: write ${shown}`
    })
  }

  // A key one space left of its siblings in a list item reads as a sequence item without "-".
  if (first.code === 'BAD_INDENT' || first.code === 'MULTILINE_IMPLICIT_KEY' || first.message.startsWith('Nested mappings') ||
    (first.code === 'MISSING_CHAR' && first.message.startsWith('Sequence item without'))) {
    // `server: [` then `  bad: yaml: : :`: yaml fails first on the nested map, but that line is only read inside the [;
    // a [ opened after the first error has nothing to do with it.
    const flowLater = neverClosed(errors.find(e => FLOW_UNENDED.test(e.message)), true, first.pos[0])
    if (flowLater !== undefined) return flowLater
    const misplaced = misindentedKey(source, line)
    if (misplaced !== undefined) return at(misplaced.line, misplaced.indent + 1, misplaced.message)
  }

  // `users` alone on its line, its keys below it: yaml reads the lines as one key.
  // A key starts with a letter, digit or _: never the "-" of a list item.
  const bare = /^(\s*(?:-\s+)?)([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(?:#.*)?$/.exec(source[line - 1] ?? '')
  if (first.code === 'MULTILINE_IMPLICIT_KEY' && bare !== null) return keyWithoutColon(line, bare, `"${bare[2] as string}" has no ":" after it: write ${bare[2] as string}:`)
  // `targets [ { url: ... } ]`: a plain word up to the first ":", then what is left unexpected.
  const glance = /^(\s*(?:-\s+)?)([A-Za-z0-9_][A-Za-z0-9_.-]*)\s+([[{])/.exec(source[line - 1] ?? '')
  if (first.code === 'UNEXPECTED_TOKEN' && glance !== null) {
    const [open, close] = glance[3] === '{' ? ['{', '}'] : ['[', ']']
    return keyWithoutColon(line, glance, `"${glance[2] as string}" has no ":" after it: write ${glance[2] as string}: ${open}...${close}`)
  }

  // `{ host: 127.0.0.1 port: 8080 }`: yaml reads "127.0.0.1 port: 8080" as a map in the flow collection.
  if (first.code === 'BLOCK_IN_FLOW') {
    const values = /^(.*?\S)\s+(?:[A-Za-z0-9_.-]+|"[^"]*"|'[^']*'):(?:\s|$)/.exec(text.slice(first.pos[0], first.pos[1]))
    if (values !== null) {
      const where = lines.linePos(first.pos[0])
      const map = unclosed(source, where, '{', '}')
      const seq = unclosed(source, where, '[', ']')
      const inMap = map !== undefined && (seq === undefined || map.line > seq.line || (map.line === seq.line && map.col > seq.col))
      const node = nodeAt(doc, n => n.range?.[0] === first.pos[0])
      return { ...issue(first.pos[0] + (values[1] as string).length, `a "," is missing between the values in ${inMap ? '{ }' : '[ ]'}`), path: node === undefined ? '' : formatPath(node.path) }
    }
  }
  return issue(first.pos[0], withoutSource(first))
}

const FLOW_UNENDED = /^Flow (map|sequence) in block collection must be sufficiently indented and end with a [}\]]/

/**
 * The last `open` before `end` that no `close` after it closes (ignoring quoted text and comments):
 * lines read upwards, each line's closers owed to the lines above. Lines and columns from 1.
 */
function unclosed (source: readonly string[], end: { line: number, col: number }, open: string, close: string): { line: number, col: number } | undefined {
  let owed = 0
  for (let line = end.line; line >= 1; line--) {
    const text = (source[line - 1] ?? '').slice(0, line === end.line ? end.col - 1 : undefined)
    const opens: number[] = []
    let closes = 0
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string
      const starts = i === 0 || /[\s{[,]/.test(text[i - 1] as string)
      if (c === '#' && starts) break
      if ((c === '"' || c === "'") && starts) i = quoteEnd(text, i)
      else if (c === open) opens.push(i)
      else if (c === close && opens.pop() === undefined) closes++
    }
    const cancelled = Math.min(owed, opens.length)
    opens.length -= cancelled
    owed += closes - cancelled
    if (opens.length > 0) return { line, col: (opens[0] as number) + 1 }
  }
  return undefined
}

/** Where the quoted text opening at `start` ends (`\"` escaped in double quotes, `''` in single ones); unclosed: the line's end. */
function quoteEnd (text: string, start: number): number {
  const quote = text[start]
  for (let i = start + 1; i < text.length; i++) {
    if (quote === '"' && text[i] === '\\') i++
    else if (text[i] === quote && quote === "'" && text[i + 1] === "'") i++
    else if (text[i] === quote) return i
  }
  return text.length
}

/**
 * yaml's message without the file's text it quotes, which may be a secret: a parse error's token
 * (`Not a YAML token: ...`, `...: "text"`), a directive's name or version.
 */
function withoutSource (error: YAMLError): string {
  return (error.message.split('\n')[0] as string).replace(/^(Not a YAML token|Unsupported YAML version|Unknown directive)\b.*$/, '$1').replace(/: ".*$/, '')
}

interface KeyLine { line: number, indent: number, key: string }

/** A key written `-name`: a list item's "-" with no space after it, read as part of the key. */
const dashed = (k: KeyLine): boolean => /^-[A-Za-z0-9_]/.test(k.key)
const glueDash = (k: KeyLine): { line: number, indent: number, message: string } =>
  ({ line: k.line, indent: k.indent, message: `a space is missing after the "-" of "${k.key}": write - ${k.key.slice(1)}: (YAML reads ${k.key} as one key)` })

/** The first key line at or after `from - 1` whose indentation matches neither its previous sibling nor a child of it, or a `-key` among them. */
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
      // `-name: r` then `    match:`: the keys below are indented under a list item that never began.
      if (dashed(prev)) return glueDash(prev)
      return { line: k.line, indent: k.indent, message: `"${k.key}" is indented more than "${prev.key}" above it (${k.indent} spaces, not ${prev.indent}): align it, or give "${prev.key}" no value on its line` }
    }
    if (k.indent < prev.indent) {
      if (dashed(k)) return glueDash(k)
      const sibling = keys.slice(0, i).reverse().find(s => s.indent <= k.indent)
      if (sibling !== undefined && sibling.indent !== k.indent) {
        return { line: k.line, indent: k.indent, message: `"${k.key}" is indented ${k.indent} spaces, which matches no key above it ("${prev.key}" has ${prev.indent}, "${sibling.key}" ${sibling.indent}): check the indentation of "${k.key}"` }
      }
    }
  }
  return undefined
}

/** The quoted scalar around `offset` (`ending`: or that ends there, as an unclosed one ends with the file), and its key path. */
function quotedAt (doc: Document, offset: number, ending: boolean): { node: Scalar, path: KeyPath } | undefined {
  let found: { node: Scalar, path: KeyPath } | undefined
  visit(doc, {
    Scalar (_, node, ancestors) {
      const r = node.range
      if (r == null || (node.type !== 'QUOTE_DOUBLE' && node.type !== 'QUOTE_SINGLE')) return
      if (r[0] <= offset && (offset < r[1] || (ending && offset <= r[2]))) { found = { node, path: keyPathOf(ancestors, node) }; return visit.BREAK }
    }
  })
  return found
}

/** The first node, in document order, `test` picks, and its key path. */
function nodeAt (doc: Document, test: (node: Node) => boolean): { node: Node, path: KeyPath } | undefined {
  let found: { node: Node, path: KeyPath } | undefined
  visit(doc, {
    Node (_, node, ancestors) {
      if (test(node)) { found = { node, path: keyPathOf(ancestors, node) }; return visit.BREAK }
    }
  })
  return found
}

/**
 * The key path of the key written again at `offset`, where it was first written, and whether it is
 * the first key of a block map that is a list's item (the repeat restarts the item).
 */
function repeatedKey (doc: Document, offset: number): { keys: KeyPath, first: number, restartsItem: boolean } | undefined {
  let found: { keys: KeyPath, first: number, restartsItem: boolean } | undefined
  visit(doc, {
    Pair (_, pair, ancestors) {
      const key = pair.key
      if (!isScalar(key) || key.range?.[0] !== offset) return
      const map = ancestors[ancestors.length - 1] as YAMLMap
      const first = map.items.find(p => isScalar(p.key) && p.key.value === key.value)?.key as Scalar | undefined
      const restartsItem = isSeq(ancestors[ancestors.length - 2]) && map.flow !== true && map.items[0]?.key === first
      found = { keys: [...keyPathOf(ancestors.slice(0, -1), map), String(key.value)], first: first?.range?.[0] ?? offset, restartsItem }
      return visit.BREAK
    }
  })
  return found
}
