import t from 'tap'
import { readFile } from 'node:fs/promises'
import { isMap, isScalar, isSeq, LineCounter, parse, parseDocument, type Node } from 'yaml'
import { SCHEMA_FILE } from '../src/config/emit-schema.ts'
import { branches, keyName, schemaPaths, type Schema } from './helpers/schema-paths.ts'
import { toBytes } from '../src/config/byte-size.ts'
import { toMs } from '../src/config/duration.ts'
import { runCliHere } from './helpers/run-cli.ts'

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

// Its values are the defaults too: a copy once kept only two of the five method-override headers
// the gateway removes by default, and retried on 502/503. A value that is an example says so on its line.
type Described = Schema & { description?: string }
const SIZE = /^\d+(?:KiB|MiB|GiB)$/
const DURATION = /^\d+(?:ms|s|m|h|d)$/
/** A default or a value in one form: sizes in bytes, durations in ms, arrays item by item. */
const normal = (v: unknown): unknown => Array.isArray(v)
  ? v.map(normal)
  : typeof v === 'string' && SIZE.test(v) ? toBytes(v) : typeof v === 'string' && DURATION.test(v) ? toMs(v) : v

/** The schema's `Default X` of a key, when X is a plain value or a flow list (else undefined: prose). */
function schemaDefault (s: Described): unknown {
  const text = branches(s).map(b => (b as Described).description).find(d => d !== undefined)?.match(/Default (\[[^\]]*\]|[^\s,;(]+?)(?:[.,;:]?(?:\s|$))/)?.[1]
  if (text === undefined) return undefined
  try { return parse(text) as unknown } catch { return undefined }
}

t.test('config/examples/reference.yaml\'s values are the schema\'s defaults, or say they are not', async t => {
  const schema = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as Described
  const text = await readFile(new URL('../config/examples/reference.yaml', import.meta.url), 'utf8')
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  const lineOf = (n: Node) => text.split('\n')[lines.linePos(n.range?.[0] ?? 0).line - 1] ?? ''
  const wrong: string[] = []
  let compared = 0
  const walk = (node: unknown, s: Described, path: string): void => {
    if (isSeq(node)) {
      const item = branches(s).find(b => b.items !== undefined)?.items
      if (item !== undefined) for (const n of node.items) walk(n, item, `${path}[]`)
      return
    }
    if (!isMap(node)) return
    for (const pair of node.items) {
      const k = String(isScalar(pair.key) ? pair.key.value : pair.key)
      const named = branches(s).find(b => b.properties?.[k] !== undefined)?.properties?.[k]
      const sub = (named ?? branches(s).map(b => Object.values(b.patternProperties ?? {})[0]).find(x => x !== undefined)) as Described | undefined
      if (sub === undefined) continue
      const p = named !== undefined ? (path === '' ? k : `${path}.${k}`) : `${path}.*`
      const value = pair.value as Node | null
      const expected = schemaDefault(sub)
      if (value !== null && !isMap(value) && expected !== undefined && typeof expected !== 'object' === !isSeq(value) && !lineOf(value).includes('not the default')) {
        compared++
        const live = normal(value.toJSON())
        if (JSON.stringify(live) !== JSON.stringify(normal(expected))) wrong.push(`${p}: ${JSON.stringify(value.toJSON())}, default ${JSON.stringify(expected)}`)
      }
      walk(value, sub, p)
    }
  }
  walk(doc.contents, schema, '')
  t.ok(compared > 40, `values compared (${compared})`)
  t.same(wrong, [], 'values that differ from the default on a line that does not say so')
})

// "Every key validate accepts, as it is": once validate warned of it (a route's response-headers
// dropped the top-level set), so a copy of it warned too.
t.test('config/examples/reference.yaml validates without a warning', async t => {
  const run = await runCliHere('validate', '-c', 'config/examples/reference.yaml')
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stderr, '', 'no warning')
})
