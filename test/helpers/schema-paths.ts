/** A JSON Schema as far as key paths go. */
export interface Schema { properties?: Record<string, Schema>, additionalProperties?: boolean | Schema, patternProperties?: Record<string, Schema>, items?: Schema, anyOf?: Schema[], oneOf?: Schema[] }

/** A schema and the branches of its unions, nested ones too. */
export const branches = (s: Schema): Schema[] => [s, ...(s.anyOf ?? []).flatMap(branches), ...(s.oneOf ?? []).flatMap(branches)]

/** Every key path a schema allows (`upstreams.*.targets[].url`), not into plugins' own configs. */
export function schemaPaths (s: Schema, path = '', out = new Set<string>()): Set<string> {
  for (const b of branches(s)) {
    for (const [k, v] of Object.entries(b.properties ?? {})) {
      const p = path === '' ? k : `${path}.${k}`
      out.add(p)
      if (p !== 'plugins' && !p.endsWith('.plugins')) schemaPaths(v, p, out)
    }
    for (const v of [...Object.values(b.patternProperties ?? {}), ...(typeof b.additionalProperties === 'object' ? [b.additionalProperties] : [])]) schemaPaths(v, `${path}.*`, out)
    if (b.items !== undefined) schemaPaths(b.items, `${path}[]`, out)
  }
  return out
}

/** The last key of a path: `url` of `upstreams.*.targets[].url`. */
export const keyName = (p: string): string => p.replace(/(\[\]|\.\*)+$/, '').split(/\.|\[\]/).pop() as string
