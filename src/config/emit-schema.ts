import { writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { configSchema } from './schema.ts'
import { builtinPlugins } from '../plugins/registry.ts'

export const SCHEMA_FILE = new URL('../../config/gateway.schema.json', import.meta.url)

/** The JSON Schema editors use for config files, built-in plugin configs included. */
export async function schemaJson (): Promise<string> {
  const plugins = [...(await builtinPlugins()).values()]
  return JSON.stringify(configSchema(plugins), null, 2) + '\n'
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeFile(SCHEMA_FILE, await schemaJson())
  console.log(`wrote ${SCHEMA_FILE.pathname}`)
}
