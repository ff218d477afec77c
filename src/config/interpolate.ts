const NAME_RE = /[A-Za-z_][A-Za-z0-9_]*/y

export interface Interpolated { value: string, missing: string[] }

/**
 * Replaces ${VAR} and ${VAR:-default} in a YAML string (an empty variable counts as unset). A
 * default may hold ${...} itself, read only when the default is used; `$${` is a literal `${`.
 * Anything else (`${` without a name or a closing brace) is left as written. The result is a
 * string; schema validation turns "8080" into a number where one is expected.
 */
export function interpolate (text: string, env: NodeJS.ProcessEnv): Interpolated {
  const missing: string[] = []
  return { value: expand(text, 0, false, env, missing).out, missing }
}

interface Expanded { out: string, end: number, closed: boolean }

/** Expands from `start`; inside a default (`nested`), up to the `}` that closes it. */
function expand (text: string, start: number, nested: boolean, env: NodeJS.ProcessEnv, missing: string[] | undefined): Expanded {
  let out = ''
  let i = start
  while (i < text.length) {
    const c = text[i]
    if (nested && c === '}') return { out, end: i + 1, closed: true }
    if (c === '$' && text.startsWith('$${', i)) {
      out += '${'
      i += 3
      continue
    }
    const v = c === '$' && text[i + 1] === '{' ? variable(text, i, env, missing) : undefined
    if (v === undefined) {
      out += c
      i++
      continue
    }
    out += v.out
    i = v.end
  }
  return { out, end: i, closed: !nested }
}

/** The `${...}` at `i`, or undefined when it is not one (then it stays as written). */
function variable (text: string, i: number, env: NodeJS.ProcessEnv, missing: string[] | undefined): Expanded | undefined {
  NAME_RE.lastIndex = i + 2
  const name = NAME_RE.exec(text)?.[0]
  if (name === undefined) return undefined
  const after = i + 2 + name.length
  const set = env[name] !== undefined && env[name] !== ''
  if (text[after] === '}') {
    if (!set) missing?.push(name)
    return { out: set ? String(env[name]) : '', end: after + 1, closed: true }
  }
  if (!text.startsWith(':-', after)) return undefined
  // The default is read either way, to find its end; its own variables count only when used.
  const inner: string[] = []
  const fallback = expand(text, after + 2, true, env, inner)
  if (!fallback.closed) return undefined
  if (!set) missing?.push(...inner)
  return { out: set ? String(env[name]) : fallback.out, end: fallback.end, closed: true }
}
