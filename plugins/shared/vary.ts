import type { HeaderMap } from '../../src/index.ts'

/** Adds `name` (given lower-case) to Vary unless it is there already or Vary is `*`. */
export function addVary (headers: HeaderMap, name: string): void {
  const vary = headers.vary
  if (vary === undefined || vary === '') { headers.vary = name; return }
  const current = (Array.isArray(vary) ? vary.join(',') : vary).toLowerCase()
  for (const part of current.split(',')) {
    const p = part.trim()
    if (p === '*' || p === name) return
  }
  headers.vary = `${Array.isArray(vary) ? vary.join(', ') : vary}, ${name}`
}
