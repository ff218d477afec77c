import t from 'tap'
import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { SCHEMA_FILE } from '../src/config/emit-schema.ts'
import { branches, keyName, schemaPaths, type Schema } from './helpers/schema-paths.ts'

// config/examples/reference.yaml says it has every key of a config with its default: once it
// lacked 90 of them (TLS, HTTP/2, stores, consumers, client timeouts...). Each key of the schema
// must be in it, as a key or, where it cannot be live (files, secrets, alternatives), named in a
// comment (`# key:`). Plugins' own keys are in docs/plugins/.
/** The key paths a document has, a name under a map written `*` as the schema has it. */
function documentPaths (value: unknown, s: Schema, path: string, out: Set<string>): Set<string> {
  if (Array.isArray(value)) {
    const item = branches(s).find(b => b.items !== undefined)?.items
    if (item !== undefined) for (const v of value) documentPaths(v, item, `${path}[]`, out)
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const named = branches(s).find(b => b.properties?.[k] !== undefined)
      const map = branches(s).map(b => Object.values(b.patternProperties ?? {})[0] ?? (typeof b.additionalProperties === 'object' ? b.additionalProperties : undefined)).find(x => x !== undefined)
      const [p, sub] = named !== undefined ? [path === '' ? k : `${path}.${k}`, named.properties?.[k] as Schema] : [`${path}.*`, map]
      if (sub === undefined) continue
      out.add(p)
      documentPaths(v, sub, p, out)
    }
  }
  return out
}

t.test('config/examples/reference.yaml has every key of the schema, live or named in a comment', async t => {
  const schema = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as Schema
  const text = await readFile(new URL('../config/examples/reference.yaml', import.meta.url), 'utf8')
  const live = documentPaths(parse(text), schema, '', new Set())
  const commented = new Set([...text.matchAll(/#.*$/gm)].flatMap(m => [...m[0].matchAll(/([A-Za-z][\w-]*):/g)].map(k => k[1] as string)))
  const missing = [...schemaPaths(schema)].filter(p => !live.has(p) && !commented.has(keyName(p)))
  t.same(missing, [], 'keys of the schema in neither')
})
