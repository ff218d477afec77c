import { hiddenAt } from './redact.ts'
import type { ConfigIssue } from './config-error.ts'
import { REDACTED } from './url-userinfo.ts'
import { withoutBom } from './yaml-document.ts'

const MISSING = /^missing required key "([^"]+)"$/

/**
 * A key dedented out of its parent shows up twice: the parent is empty or lacks the key, and the
 * key is unknown (or has the wrong shape) one level up. Reported once, at the key, saying so.
 * So is a key glued to its value in { } (mergeGluedKeys), first.
 */
export function mergeDedentedKeys (all: ConfigIssue[], text: string): ConfigIssue[] {
  const issues = mergeGluedKeys(all)
  const source = withoutBom(text).split('\n')
  const strayOf = strayFinder(issues)
  const removed = new Set<ConfigIssue>()
  const merged = new Map<ConfigIssue, ConfigIssue>()
  const gone = (i: ConfigIssue): boolean => removed.has(i) || merged.has(i)
  for (const parent of issues) {
    const missing = MISSING.exec(parent.message)?.[1]
    if (missing === undefined && parent.message !== 'has no value') continue
    const stray = strayOf(parent, missing)
    if (stray === undefined || gone(stray) || gone(parent)) continue
    const key = lastKey(stray.path)
    const col = (source[stray.line - 1] ?? '').search(/\S/) + 1
    removed.add(parent)
    merged.set(stray, { ...stray, col, message: `"${key}" is outside "${lastKey(parent.path)}", which it seems to belong to: check the indentation of "${key}"` })
  }
  return issues.filter(i => !removed.has(i)).map(i => merged.get(i) ?? i)
}

/**
 * `{ port:18080 }`: in { } a colon not followed by a space is part of the key: one key
 * "port:18080" with no value, and its map lacks "port". Reported once, at the key, saying to add
 * the space (not as an empty key a stray key below would seem to belong to). The value may hold
 * dots (`host:127.0.0.1`), so the key is found at the end of the path, not as its last segment;
 * and spaces (`token:"a b"`). A secret's value (`token:abc`, as GET /config would hide it) is
 * shown as [redacted], in the message and the path: both are logged and shown to readers.
 */
const GLUED = /(?:^|\.)([A-Za-z][A-Za-z0-9_-]*):(\S.*)$/

function mergeGluedKeys (issues: ConfigIssue[]): ConfigIssue[] {
  const meant = new Set<string>()
  const out = issues.map(i => {
    const glued = i.message === 'has no value' ? GLUED.exec(i.path) : null
    if (glued === null) return i
    const key = glued[1] as string
    const parent = i.path.slice(0, glued.index)
    meant.add(JSON.stringify([parent, key]))
    const secret = hiddenAt([...parent.split(/\.|\[\d+\]/).filter(k => k !== ''), key])
    const value = secret ? REDACTED : glued[2] as string
    return { ...i, path: secret ? `${i.path.slice(0, i.path.length - (glued[2] as string).length)}${REDACTED}` : i.path, message: `"${key}:${value}" is read as one key with no value: write \`${key}: ${value}\`, with a space after the colon` }
  })
  return meant.size === 0 ? out : out.filter(i => !meant.has(JSON.stringify([i.path, MISSING.exec(i.message)?.[1]])))
}

interface Ranked { readonly issue: ConfigIssue, readonly rank: number }

/**
 * For an empty parent: the first issue below it, by line then as found, on a key beside it (in the
 * same map: a key one step less indented than meant). For a parent lacking the key `missing`: the
 * first on that key, one level up or higher (its name says where it belongs). Not one further out
 * for an empty parent: `loging:` at column 1 is no child of a `connect:` at column 7 left empty.
 * The issues are indexed by their key's parent path once: thousands of empty keys must not cost n²
 * comparisons.
 */
function strayFinder (issues: ConfigIssue[]): (parent: ConfigIssue, missing: string | undefined) => ConfigIssue | undefined {
  // Ranked by line, then as found (the sort is stable); each index lists them in that order.
  const ranked = [...issues].sort((a, b) => a.line - b.line).map((issue, rank): Ranked => ({ issue, rank }))
  const byParent = new Map<string, Ranked[]>()
  const byParentAndKey = new Map<string, Ranked[]>()
  for (const r of ranked) {
    // An issue on a list item is not on a key.
    if (r.issue.path.endsWith(']')) continue
    const parent = parentOf(r.issue.path)
    append(byParent, parent, r)
    append(byParentAndKey, JSON.stringify([parent, lastKey(r.issue.path)]), r)
  }
  return (parent, missing) => {
    let best: Ranked | undefined
    for (const ancestor of missing === undefined ? mapOf(parent.path) : ancestorsOf(parent.path)) {
      const list = missing === undefined ? byParent.get(ancestor) : byParentAndKey.get(JSON.stringify([ancestor, missing]))
      const first = list === undefined ? undefined : firstAfter(list, parent.line)
      if (first !== undefined && (best === undefined || first.rank < best.rank)) best = first
    }
    return best?.issue
  }
}

function append (index: Map<string, Ranked[]>, key: string, r: Ranked): void {
  const list = index.get(key)
  if (list === undefined) index.set(key, [r])
  else list.push(r)
}

/** The first of `list` (in rank order, so by line) on a line after `line`. */
function firstAfter (list: Ranked[], line: number): Ranked | undefined {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((list[mid] as Ranked).issue.line > line) hi = mid
    else lo = mid + 1
  }
  return list[lo]
}

/** The path of the map holding the key at `path`, as a list: none for a list item or the root. */
const mapOf = (path: string): string[] => path === '' || path.endsWith(']') ? [] : [parentOf(path)]

/** Every proper ancestor of a path: "", and each prefix ending before a "." or "[" ("a", "a.b" of "a.b[0]"). */
function ancestorsOf (path: string): string[] {
  const out = ['']
  for (let k = 1; k < path.length; k++) if (path[k] === '.' || path[k] === '[') out.push(path.slice(0, k))
  return out
}

const lastKey = (path: string): string => path.slice(Math.max(path.lastIndexOf('.'), path.lastIndexOf(']')) + 1)
const parentOf = (path: string): string => path.slice(0, Math.max(path.lastIndexOf('.'), 0))
