const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

export interface Interpolated { value: string, missing: string[] }

/**
 * Replaces ${VAR} and ${VAR:-default} in a YAML string (an empty variable counts as unset).
 * The result is a string; schema validation turns "8080" into a number where one is expected.
 */
export function interpolate (text: string, env: NodeJS.ProcessEnv): Interpolated {
  const missing: string[] = []
  const out = text.replace(VAR_RE, (_m, name: string, fallback: string | undefined) => {
    const v = env[name]
    if (v !== undefined && v !== '') return v
    if (fallback !== undefined) return fallback
    missing.push(name)
    return ''
  })
  return { value: out, missing }
}
