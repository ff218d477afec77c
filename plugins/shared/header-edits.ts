import { Type, type Static } from '@sinclair/typebox'
import type { HeaderMap } from '../../src/index.ts'

const HeaderName = Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', errorMessage: 'must be a valid header name' })

/** Header edits, applied in this order: remove, rename, set. Names are case-insensitive. */
export const HeaderEditsSchema = Type.Object({
  remove: Type.Optional(Type.Array(HeaderName, { description: 'Headers to drop.' })),
  rename: Type.Optional(Type.Record(Type.String(), HeaderName, { description: 'from-name: to-name; the value is kept.' })),
  set: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'name: value; replaces any existing value.' }))
}, { additionalProperties: false })

export type HeaderEdits = Static<typeof HeaderEditsSchema>

/** Compiles the edits once (at config load) into one function applied per request. */
export function compileHeaderEdits (edits: HeaderEdits): (headers: HeaderMap) => void {
  const remove = (edits.remove ?? []).map(h => h.toLowerCase())
  const rename = Object.entries(edits.rename ?? {}).map(([from, to]) => [from.toLowerCase(), to.toLowerCase()] as const)
  const set = Object.entries(edits.set ?? {}).map(([name, value]) => [name.toLowerCase(), value] as const)
  return headers => {
    for (const name of remove) headers[name] = undefined
    for (const [from, to] of rename) {
      const value = headers[from]
      if (value === undefined) continue
      headers[from] = undefined
      headers[to] = value
    }
    for (const [name, value] of set) headers[name] = value
  }
}
