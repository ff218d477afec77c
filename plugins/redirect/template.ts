import { splitTemplate } from '../../src/index.ts'

/**
 * Compiles a Location template (`https://example.com/v2/:id/*`) into a function of the route's
 * params, or returns what is wrong with it. Params are inserted as matched (still percent-encoded).
 */
export function compileTemplate (template: string, available: readonly string[]): ((params: Readonly<Record<string, string>>) => string) | string {
  // `:` followed by a digit (a port) or `/` (after the scheme) is literal: not a param name.
  const parts = splitTemplate(template, available, 'the route\'s match.path')
  if (typeof parts === 'string') return parts
  const names = parts.filter((_, i) => i % 2 === 1)
  if (names.length === 0) return () => template
  return params => {
    let out = parts[0] as string
    for (let i = 0; i < names.length; i++) {
      const value = params[names[i] as string] ?? ''
      // An empty "*" takes its slash with it (`/v2/*` for `/old` is `/v2`).
      if (value === '' && out.endsWith('/') && out.length > 1) out = out.slice(0, -1)
      out += value + (parts[2 * i + 2] as string)
    }
    return out
  }
}
