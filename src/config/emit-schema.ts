import { writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { configSchema } from './schema.ts'
import { builtinPlugins } from '../plugins/registry.ts'

export const SCHEMA_FILE = new URL('../../config/gateway.schema.json', import.meta.url)

/** The JSON Schema editors use for config files, built-in plugin configs included. */
export async function schemaJson (): Promise<string> {
  const plugins = [...(await builtinPlugins()).values()]
  return JSON.stringify(configSchema(plugins), optionalWithDefault, 2) + '\n'
}

/** A key with a default is required only after validation filled it in: editors must not ask for it. */
function optionalWithDefault (this: unknown, key: string, value: unknown): unknown {
  const props = (this as { properties?: Record<string, { default?: unknown }> }).properties
  if (key !== 'required' || !Array.isArray(value) || props === undefined) return value
  const required = value.filter(name => props[name as string]?.default === undefined)
  return required.length > 0 ? required : undefined
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeFile(SCHEMA_FILE, await schemaJson())
  console.log(`wrote ${SCHEMA_FILE.pathname}`)
}
