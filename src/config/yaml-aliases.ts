import { isAlias, isCollection, isMap, isPair, isScalar, visit, type Alias, type Document, type LineCounter, type Node } from 'yaml'
import type { ConfigIssue } from './config-error.ts'
import { keyPathOf } from './yaml-document.ts'
import { formatPath, type KeyPath } from './positions.ts'
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
 * The most characters of text (keys and strings) the config may hold once its aliases are expanded:
 * 64 MiB, or a hundred times the file's length if more. A value's count missed a long string aliased
 * many times: a 20 KB file of one 20 KB string copied 111,000 times (2 GB of text) took validate 15 s
 * of CPU, and GET /config 18 s and 743 MB before it failed. 16 MiB refused 5,500 routes aliasing one
 * 70-origin CORS map (a 426 KB file, 21 MB expanded).
 */
const MIN_EXPANDED_CHARS = 64 * 2 ** 20
const TEXT_EXPANSION = 100

/**
 * How many levels maps and lists may nest (the top level is one; an alias counts as the copy it
 * makes). The checks, the schema and frozenCopy walk the config recursively: from about 1,000 levels
 * (fewer on a busier stack) they or yaml's parser overflow the stack, which ended start with a
 * RangeError and had a reload answered 500. The docs' examples nest 8 levels at most, the tests'
 * about as many: 64 leaves free-form data (consumers' metadata) ample room.
 */
export const MAX_DEPTH = 64

/** What a config nested past MAX_DEPTH is told. */
export const NESTED_TOO_DEEPLY = `nested too deeply: maps and lists may nest at most ${MAX_DEPTH} levels`

/**
 * The config as plain data, or what keeps it from being that: a value YAML's tags make other than
 * null, true/false, a number, a string, a list or a mapping with text keys (a plugins: !!omap was an
 * object with no keys to the schema, so no plugin ran; what frozenCopy hands plugins could not be
 * frozen), maps and lists nested past MAX_DEPTH, or what its aliases make of it: an alias inside
 * the node it names (an endless config: the checks once overflowed the stack on it), an alias of no
 * anchor, or aliases that expand past the limit above. Each once ended the load with a stack trace
 * or a misleading line. Also one issue, rather than "has no value" or the schema's cascade, for an
 * empty file and a merge key.
 */
export function toData (doc: Document, lines: LineCounter, file: string): { data: unknown } | { issue: ConfigIssue } {
  const issue = (offset: number, message: string): { issue: ConfigIssue } => ({ issue: { file, ...lines.linePos(offset), path: '', message } })
  if (doc.contents === null) return issue(0, 'the file is empty: a config needs at least server, upstreams and routes')
  // Before anything else walks the document: this walk alone stops at MAX_DEPTH.
  const misshapen = shapeIssue(doc, lines, file)
  if (misshapen !== undefined) return { issue: misshapen }
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
    const chars = Math.max(MIN_EXPANDED_CHARS, TEXT_EXPANSION * (doc.range?.[2] ?? 0))
    const { written, expanded, deep, long } = valueCounts(doc.contents, targets, chars)
    const limit = Math.max(MIN_EXPANDED, EXPANSION * written)
    if (expanded > limit) {
      return issue(first.range?.[0] ?? 0, `aliases expand the config to more than ${limit.toLocaleString('en-US')} values (${written.toLocaleString('en-US')} are written): write the values out, or use fewer aliases`)
    }
    if (long !== undefined) {
      const message = `aliases expand the config to more than ${Math.ceil(chars / 2 ** 20)} MiB of text with this one: write the values out, or use fewer aliases`
      return { issue: { ...issue(long.range?.[0] ?? 0, message).issue, path: formatPath(nodePath(doc, long)) } }
    }
    if (deep !== undefined) {
      const keys = nodePath(doc, deep)
      return { issue: { ...issue(deep.range?.[0] ?? 0, `the value this alias copies here leaves the config ${NESTED_TOO_DEEPLY}`).issue, path: formatPath(keys) } }
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

/** The key path of `node` in the document. */
function nodePath (doc: Document, node: Node): KeyPath {
  let keys: KeyPath = []
  visit(doc, { Node (_key, n, path) { if (n === node) { keys = keyPathOf(path, n); return visit.BREAK } } })
  return keys
}

/**
 * How many values (keys included) `root` holds as written, and with each alias counted as a copy of
 * its anchor's node; `deep`, the first alias whose copy nests maps and lists past MAX_DEPTH; `long`,
 * the first alias whose copy brings the characters of text past `maxChars`. One walk in document
 * order: an alias's anchor is always done before it is reached (it comes before, and does not
 * enclose it), so each anchored node is counted once.
 */
function valueCounts (root: Node, targets: ReadonlyMap<Alias, Node>, maxChars: number): { written: number, expanded: number, deep: Alias | undefined, long: Alias | undefined } {
  const anchored = new Map<Node, { values: number, levels: number, chars: number }>()
  let written = 0
  let expanded = 0
  let chars = 0
  let deep: Alias | undefined
  let long: Alias | undefined
  // Adds `node` to the counts; how many levels of maps and lists it is. `depth`: the levels around it.
  const count = (node: unknown, depth: number): number => {
    if (node === null) return 0
    written++
    if (isAlias(node)) {
      const copy = anchored.get(targets.get(node) as Node) ?? { values: 0, levels: 0, chars: 0 }
      expanded += copy.values
      chars += copy.chars
      if (depth + copy.levels > MAX_DEPTH) deep ??= node
      if (chars > maxChars) long ??= node
      return copy.levels
    }
    const before = expanded++
    const charsBefore = chars
    if (isScalar(node) && typeof node.value === 'string') chars += node.value.length
    let levels = 0
    if (isCollection(node)) {
      for (const item of node.items) {
        levels = Math.max(levels, isPair(item) ? Math.max(count(item.key, depth + 1), count(item.value, depth + 1)) : count(item, depth + 1))
      }
      levels++
    }
    if ((node as Node).anchor !== undefined) anchored.set(node as Node, { values: expanded - before, levels, chars: chars - charsBefore })
    return levels
  }
  count(root, 0)
  return { written, expanded, deep, long }
}

// What YAML's tags make that is not plain data, and what to write instead.
const INSTEAD: Readonly<Record<string, string>> = {
  'tag:yaml.org,2002:omap': 'an ordered map (!!omap) is not plain data: write a plain mapping (key: value)',
  'tag:yaml.org,2002:pairs': 'a list of pairs (!!pairs) is not plain data: write a plain mapping (key: value)',
  'tag:yaml.org,2002:set': 'a set (!!set) is not plain data: write a list ([a, b])',
  'tag:yaml.org,2002:timestamp': 'a date (!!timestamp) is not plain data: write it as a quoted string ("2025-01-31")',
  'tag:yaml.org,2002:binary': 'bytes (!!binary) are not plain data: write the base64 text as a string, without the tag'
}
const PLAIN_COLLECTION_TAGS: ReadonlyArray<string | undefined> = [undefined, 'tag:yaml.org,2002:map', 'tag:yaml.org,2002:seq']

/**
 * The first value of the document (in document order) that is not plain data, or the first map or
 * list nested past MAX_DEPTH as written (aliases: valueCounts). Its recursion stops there, however
 * deep the document: load.ts asks it too of a document yaml's parse ran out of stack on.
 */
export function shapeIssue (doc: Document, lines: LineCounter, file: string): ConfigIssue | undefined {
  const found = misshapen(doc.contents, [], 0)
  return found === undefined ? undefined : { file, ...lines.linePos(found.node.range?.[0] ?? 0), path: formatPath(found.keys), message: found.message }
}

interface Misshapen { readonly node: Node, readonly keys: KeyPath, readonly message: string }

/** shapeIssue's walk; `keys` the path to `node`, `depth` the maps and lists around it. */
function misshapen (node: unknown, keys: Array<string | number>, depth: number): Misshapen | undefined {
  if (isScalar(node)) {
    const v = node.value
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return undefined
    return { node, keys: [...keys], message: notPlain(node) }
  }
  if (!isCollection(node)) return undefined
  if (depth === MAX_DEPTH) return { node, keys: [...keys], message: NESTED_TOO_DEEPLY }
  if (!PLAIN_COLLECTION_TAGS.includes(node.tag)) return { node, keys: [...keys], message: notPlain(node) }
  if (isMap(node)) {
    for (const pair of node.items) {
      // A key is text: a scalar. An alias as one escaped the check for keys written twice (yaml compares
      // the nodes: `key-auth: {}` then `*ka : false` turned auth off while the file showed key-auth: {}).
      if (isCollection(pair.key)) return { node: pair.key, keys: [...keys], message: 'a map or a list as a key (? ...) is not plain data: write the key as a string' }
      if (isAlias(pair.key)) return { node: pair.key, keys: [...keys], message: 'an alias (*name) as a key: write the key itself' }
      const found = misshapen(pair.key, keys, depth + 1) ?? inside(String(isScalar(pair.key) ? pair.key.value : pair.key), pair.value, keys, depth + 1)
      if (found !== undefined) return found
    }
  } else {
    for (const [i, item] of node.items.entries()) {
      const found = inside(i, item, keys, depth + 1)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/** misshapen of `node`, at `key` below `keys`. */
function inside (key: string | number, node: unknown, keys: Array<string | number>, depth: number): Misshapen | undefined {
  keys.push(key)
  const found = misshapen(node, keys, depth)
  keys.pop()
  return found
}

function notPlain (node: Node): string {
  const tag = node.tag ?? ''
  return INSTEAD[tag] ?? `${tag.replace('tag:yaml.org,2002:', '!!')} makes a value that is not plain data: write a mapping, a list, a quoted string, a number, true or false`
}
