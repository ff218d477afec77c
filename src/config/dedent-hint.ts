import type { ConfigIssue } from './config-error.ts'

const MISSING = /^missing required key "([^"]+)"$/

/**
 * A key dedented out of its parent shows up twice: the parent is empty or lacks the key, and the
 * key is unknown (or has the wrong shape) one level up. Reported once, at the key, saying so.
 */
export function mergeDedentedKeys (issues: ConfigIssue[], text: string): ConfigIssue[] {
  const source = text.split('\n')
  const out = [...issues]
  for (const parent of issues) {
    const missing = MISSING.exec(parent.message)?.[1]
    if (missing === undefined && parent.message !== 'has no value') continue
    const stray = issues
      .filter(i => i !== parent && i.line > parent.line && (missing === undefined || lastKey(i.path) === missing) && isAncestor(parentOf(i.path), parent.path))
      .sort((a, b) => a.line - b.line)[0]
    if (stray === undefined || !out.includes(stray) || !out.includes(parent)) continue
    const key = lastKey(stray.path)
    const col = (source[stray.line - 1] ?? '').search(/\S/) + 1
    const merged = { ...stray, col, message: `"${key}" is outside "${lastKey(parent.path)}", which it seems to belong to: check the indentation of "${key}"` }
    out.splice(out.indexOf(parent), 1)
    out.splice(out.indexOf(stray), 1, merged)
  }
  return out
}

const lastKey = (path: string): string => path.slice(Math.max(path.lastIndexOf('.'), path.lastIndexOf(']')) + 1)
const parentOf = (path: string): string => path.slice(0, Math.max(path.lastIndexOf('.'), 0))
const isAncestor = (ancestor: string, path: string): boolean => ancestor === '' || path.startsWith(ancestor + '.') || path.startsWith(ancestor + '[')
