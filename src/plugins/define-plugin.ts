import type { TSchema } from '@sinclair/typebox'
import type { PluginDefinition } from './contract.ts'

// A global symbol, so plugins built against another copy of this package are still recognised.
const BRAND = Symbol.for('portcullis.plugin')

const NAME_RE = /^[a-z][a-z0-9-]*$/

/** Declares a plugin. Built-in and user plugins use this same function. */
export function definePlugin<S extends TSchema, C extends TSchema = TSchema> (def: PluginDefinition<S, C>): PluginDefinition<S, C> {
  if (!NAME_RE.test(def.name)) throw new TypeError(`plugin name "${def.name}" must be lower-case letters, digits and dashes`)
  if (!Number.isInteger(def.priority)) throw new TypeError(`plugin "${def.name}": priority must be an integer`)
  if (typeof def.setup !== 'function') throw new TypeError(`plugin "${def.name}": setup must be a function`)
  for (const hook of ['vouchedHeaders', 'warnings'] as const) {
    if (def[hook] !== undefined && typeof def[hook] !== 'function') throw new TypeError(`plugin "${def.name}": ${hook} must be a function`)
  }
  // Whether Ajv compiles a schema is found when a config first uses it (compiling every built-in's here would slow each start).
  for (const [key, schema] of [['schema', def.schema], ['credentials.schema', def.credentials?.schema ?? {}], ['consumerMetadata', def.consumerMetadata ?? {}]] as const) {
    if (typeof schema !== 'object' || schema === null) throw new TypeError(`plugin "${def.name}": ${key} must be a TypeBox schema, e.g. Type.Object({ ... })`)
  }
  return Object.freeze({ ...def, [BRAND]: true })
}

export function isPluginDefinition (value: unknown): value is PluginDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true
}
