import { resolve } from 'node:path'
import type { TSchema } from '@sinclair/typebox'
import { STORE_REF } from '../stores/store-name.ts'
import { CONSUMER_REF } from '../consumers/consumer-id.ts'
import { FILE_REF } from './file-path.ts'
import { DEFAULT_STORE } from '../stores/registry.ts'
import { didYouMean } from './suggest.ts'
import type { GatewayConfig } from './schema.ts'

type Add = (path: Array<string | number>, message: string, at?: 'key' | 'value') => void

/** Resolves the file paths of a value its schema validated, and reports its unknown store and consumer names at `path`. */
export type SchemaReferences = (schema: TSchema, data: unknown, path: Array<string | number>) => void

type Visit = (schema: TSchema, data: unknown, path: Array<string | number>, replace: (value: unknown) => void) => void

const isSchema = (s: unknown): s is TSchema => typeof s === 'object' && s !== null

/**
 * Calls `visit` on every value of `data` with each part of `schema` it matches: through unions and
 * intersections, array items (one schema, or one per position: Type.Tuple), and object values
 * (properties, patternProperties: Type.Record, and additionalProperties).
 */
export function walkSchema (schema: TSchema, data: unknown, path: Array<string | number>, visit: Visit): void {
  const walk = (s: TSchema, d: unknown, p: Array<string | number>, replace: (value: unknown) => void) => {
    visit(s, d, p, replace)
    for (const branch of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])] as TSchema[]) walk(branch, d, p, replace)
    if (Array.isArray(d)) {
      // A tuple's items are an array of schemas, one per position, then additionalItems.
      const prefix = (Array.isArray(s.items) ? s.items : []) as TSchema[]
      const rest: unknown = Array.isArray(s.items) ? s.additionalItems : s.items
      d.forEach((v, i) => {
        const sub = i < prefix.length ? prefix[i] : rest
        if (isSchema(sub)) walk(sub, v, [...p, i], value => { d[i] = value })
      })
    } else if (d !== null && typeof d === 'object') {
      const o = d as Record<string, unknown>
      const properties = (s.properties ?? {}) as Record<string, TSchema>
      const patterns = Object.entries((s.patternProperties ?? {}) as Record<string, TSchema>).map(([re, sub]) => [new RegExp(re, 'u'), sub] as const)
      const others: unknown = s.additionalProperties
      if (Object.keys(properties).length === 0 && patterns.length === 0 && !isSchema(others)) return
      for (const k of Object.keys(o)) {
        const subs = patterns.filter(([re]) => re.test(k)).map(([, sub]) => sub)
        if (Object.hasOwn(properties, k)) subs.push(properties[k] as TSchema)
        else if (subs.length === 0 && isSchema(others)) subs.push(others)
        for (const sub of subs) walk(sub, o[k], [...p, k], value => { o[k] = value })
      }
    }
  }
  walk(schema, data, path, () => {})
}

/**
 * What a config's plugin-defined values (plugin configs, consumer credentials and metadata) get
 * after their schema validated them: relative paths the schema marks as files (FilePath) made
 * absolute from the config file's folder (`base`), before a check or setup sees them; values it
 * marks as store names (StoreName) must name a store, as consumer ids (ConsumerId) a consumer.
 */
export function schemaReferences (config: GatewayConfig, base: string, add: Add): SchemaReferences {
  const stores = [...new Set([DEFAULT_STORE, ...Object.keys(config.stores ?? {})])]
  // The consumers section may be malformed (its own problems are reported already).
  const consumers = new Set((Array.isArray(config.consumers) ? config.consumers : []).flatMap(c => typeof (c as { id?: unknown } | null)?.id === 'string' ? [c.id] : []))
  return (schema, data, path) => {
    walkSchema(schema, data, [], (s, d, _p, replace) => { if (typeof d === 'string' && s[FILE_REF] === true) replace(resolve(base, d)) })
    // A value reached through several branches of a union is reported once.
    const seen = new Set<string>()
    const refer = (p: Array<string | number>, value: string, known: boolean, message: () => string) => {
      const key = JSON.stringify(p)
      if (known || seen.has(key)) return
      seen.add(key)
      add(p, message())
    }
    walkSchema(schema, data, path, (s, d, p) => {
      if (typeof d !== 'string') return
      if (s[STORE_REF] === true) refer(p, d, stores.includes(d), () => `unknown store "${d}"${didYouMean(d, stores)} (stores: ${stores.join(', ')})`)
      else if (s[CONSUMER_REF] === true) {
        refer(p, d, consumers.has(d), () => `unknown consumer "${d}"${didYouMean(d, consumers)}${consumers.size === 0 ? ' (consumers: has none)' : ''}`)
      }
    })
  }
}
