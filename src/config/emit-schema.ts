import { writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { configSchema } from './schema.ts'
import { builtinPlugins } from '../plugins/registry.ts'

export const SCHEMA_FILE = new URL('../../config/gateway.schema.json', import.meta.url)

/** The JSON Schema editors use for config files, built-in plugin configs included. */
export async function schemaJson (): Promise<string> {
  const plugins = [...(await builtinPlugins()).values()]
  return JSON.stringify(acceptVariables(configSchema(plugins)), optionalWithDefault, 2) + '\n'
}

/** A key with a default is required only after validation filled it in: editors must not ask for it. */
function optionalWithDefault (this: unknown, key: string, value: unknown): unknown {
  const props = (this as { properties?: Record<string, { default?: unknown }> }).properties
  if (key !== 'required' || !Array.isArray(value) || props === undefined) return value
  const required = value.filter(name => props[name as string]?.default === undefined)
  return required.length > 0 ? required : undefined
}

type Schema = Record<string, unknown>
const isSchema = (value: unknown): value is Schema => typeof value === 'object' && value !== null && !Array.isArray(value)

// A `${VAR}` is replaced (and "8080" turned into a number) before the runtime validates: an editor
// sees the text as written, so a scalar with a type or pattern also takes a string holding one.
// As interpolate.ts reads them: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message},
// a default holding ${...} itself (here one level deep), `$${` a literal `${`, any other `$` kept.
const NAME = '[A-Za-z_][A-Za-z0-9_]*'
/** Text that is no reference: a `$` not starting `${` or `$${` (that is the literal, taken whole). */
const LITERAL = '[^$]|\\$\\$\\{|\\$(?!\\{|\\$\\{)'
const reference = (inWord: string): string => `\\$\\{${NAME}(?::?[-?](?:${inWord})*)?\\}`
// Inside a default or message a `}` ends it.
const WORD = LITERAL.replace('[^$]', '[^$}]')
const REFERENCE = reference(`${WORD}|${reference(WORD)}`)
const VARIABLE = { type: 'string', pattern: `^(?:${LITERAL})*${REFERENCE}(?:${LITERAL}|${REFERENCE})*$`, description: 'Text holding a ${VAR}, replaced by its value when the config loads.' }
// A number or boolean is the whole value: "x${A}y" is never one.
const WHOLE_VARIABLE = { type: 'string', pattern: `^${REFERENCE}$`, description: 'A ${VAR}, replaced by its value when the config loads.' }
const SCALAR_TYPES = new Set(['integer', 'number', 'boolean', 'string'])
const NAMED_SCHEMAS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependencies'])
const SUBSCHEMAS = new Set(['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'])
const SCHEMA_LISTS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems'])

/** Whether a scalar schema takes a string: one of its types is. */
function takesString (s: Schema): boolean {
  const union = s.anyOf ?? s.oneOf
  return s.type === 'string' || (Array.isArray(union) && union.some(u => isSchema(u) && takesString(u)))
}

/** Whether a schema takes only scalars: one type, or a union of such schemas. */
function scalar (s: Schema): boolean {
  if (typeof s.type === 'string') return SCALAR_TYPES.has(s.type)
  const union = s.anyOf ?? s.oneOf
  return Array.isArray(union) && union.every(u => isSchema(u) && scalar(u))
}

/** The editors' schema: each scalar that a `${VAR}` could fail (all but a bare string) takes one too. */
function acceptVariables (s: Schema): Schema {
  if (scalar(s) && !(s.type === 'string' && Object.keys(s).every(k => k === 'type' || k === 'description'))) {
    // The description and default stay on top, where editors and optionalWithDefault look.
    const { description, default: fallback, ...rest } = s
    return { ...(description !== undefined && { description }), ...(fallback !== undefined && { default: fallback }), anyOf: [rest, takesString(s) ? VARIABLE : WHOLE_VARIABLE] }
  }
  return Object.fromEntries(Object.entries(s).map(([key, value]) => {
    if (NAMED_SCHEMAS.has(key) && isSchema(value)) return [key, Object.fromEntries(Object.entries(value).map(([name, v]) => [name, isSchema(v) ? acceptVariables(v) : v]))]
    if (SUBSCHEMAS.has(key) && isSchema(value)) return [key, acceptVariables(value)]
    if ((SCHEMA_LISTS.has(key) || key === 'items') && Array.isArray(value)) return [key, value.map(v => isSchema(v) ? acceptVariables(v) : v)]
    return [key, value]
  }))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeFile(SCHEMA_FILE, await schemaJson())
  console.log(`wrote ${SCHEMA_FILE.pathname}`)
}
