import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import { Ajv2019 } from 'ajv/dist/2019.js'
import formats from 'ajv-formats'
import type { TSchema } from '@sinclair/typebox'
import { didYouMean, nearest, quoteKey } from './suggest.ts'
import { targetUrlMistake } from './target-url.ts'
import { atLeastBytes } from './byte-size.ts'
import { atMostMs, durationMistake, misspelt, wholeDurationHint } from './duration.ts'
import { formatPath, printableKey, type KeyPath } from './positions.ts'
import { writtenText } from './written-text.ts'
import { STORE_REF } from '../stores/store-name.ts'
import { CONSUMER_REF } from '../consumers/consumer-id.ts'
import { FILE_REF } from './file-path.ts'

/**
 * One schema violation, with the key path it concerns and whether it points at a key or a value.
 * `unknownKey`: an extra key, which leaves the rest of the object's shape sound; `meant`: the key
 * beside it that it seems to stand for (a typo of it, or one of its keys: `cert` for `certificates`);
 * `unknownPlugin`: a plugin name no plugin has, nor one near it.
 */
export interface SchemaProblem { path: KeyPath, at: 'key' | 'value', message: string, unknownKey?: true, meant?: string, unknownPlugin?: string }

// coerceTypes: values from ${VAR} arrive as strings ("8080" where a port number is expected). It also
// turns numbers and booleans into each other and into strings: validateSchema undoes that (see settle).
// allowUnionTypes: a value that may be of several types ({ type: ['string', 'number', 'boolean'] }) is
// coerced only when it has none of them; an anyOf of them would coerce it in its first branch.
// No optimizing pass over the generated code: the config schema then compiles in about 0.16 s less CPU,
// paid by every process that loads a config (each worker too), and it validates only at load and reload.
// The common formats: plugins' TypeBox schemas use them (Type.String({ format: 'uri' })).
function newAjv<A extends Ajv | Ajv2019> (Class: new (options: Options) => A): A {
  const ajv = new Class({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, coerceTypes: true, useDefaults: true, code: { optimize: false } })
  // A CommonJS module: its default export is the plugin's module object.
  formats.default(ajv)
  // errorMessage: a fixed message; explain: the name of a function that says what is wrong with the value.
  ajv.addVocabulary(['errorMessage', 'explain', STORE_REF, CONSUMER_REF, FILE_REF])
  // A size string's least number of bytes (ByteSize): its error is the union's message.
  ajv.addKeyword({ keyword: 'minBytes', type: 'string', schemaType: 'number', errors: false, validate: atLeastBytes })
  // A duration string's most milliseconds (Duration): its error is the union's, explained by durationMistake.
  ajv.addKeyword({ keyword: 'maxMs', type: 'string', schemaType: 'number', errors: false, validate: atMostMs })
  return ajv
}
const ajv = newAjv(Ajv)
// Draft 2019-09, for the schemas that need it (Type.Intersect's unevaluatedProperties) and only them:
// its anyOf tries every branch, and with coerceTypes a failing branch changes the value in place
// (Duration's string branch turns 0 into "0").
let ajv2019: Ajv2019 | undefined
const NEEDS_2019 = /unknown keyword: "unevaluated(Properties|Items)"/

function compile (schema: TSchema): ValidateFunction {
  try {
    return ajv.compile(schema)
  } catch (err) {
    if (!NEEDS_2019.test((err as Error).message)) throw err
    ajv2019 ??= newAjv(Ajv2019)
    return ajv2019.compile(schema)
  }
}

interface Explained { errorMessage?: string, explain?: string, anyOf?: Array<{ maximum?: number }> }

// Each is given the value and the schema naming it.
const EXPLAIN: Record<string, (value: unknown, schema: Explained) => string> = {
  targetUrl: targetUrlMistake,
  duration: v => durationMistake(v),
  longDuration: v => durationMistake(v, true),
  // A union of whole-seconds milliseconds and a string (rate-limit's window): its errorMessage (which
  // editors show too), and what the value seems meant as; its most is its number branch's maximum.
  wholeDuration: (v, schema) => `${schema.errorMessage ?? 'has an invalid value'}${wholeDurationHint(v, schema.anyOf?.[0]?.maximum ?? Infinity)}`,
  pluginTimeout: v => {
    const meant = typeof v === 'string' ? misspelt(v) : undefined
    return `must be a duration of more than 0 and at most 24 days: milliseconds as a number, or a string such as 500ms, 5s, 2m (${meant ?? 'leave it out for 30s'})`
  }
}

// A schema Ajv cannot compile (a plugin's mistake) is kept as the message that says so, tried once.
const compiled = new WeakMap<TSchema, ValidateFunction | string>()

/**
 * Validates `data` against a TypeBox schema (compiled once per schema) and explains each violation.
 * A schema that does not compile is one problem at the root of `data` (the key of the plugin it belongs to).
 */
export function validateSchema (schema: TSchema, data: unknown): SchemaProblem[] {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    try {
      validate = compile(schema)
    } catch (err) {
      validate = `its schema cannot be compiled (a mistake in the plugin, not in this file): ${(err as Error).message}`
    }
    compiled.set(schema, validate)
  }
  if (typeof validate === 'string') return [{ path: [], at: 'key', message: validate }]
  const { typed, infinite } = leaves(data)
  const valid = validate(data)
  const refused = settle(typed)
  // Where settle changed anything, validated again with the numbers' text and the refused values in
  // place, and the strings made ±Infinity as written (a second coercion reads them alike).
  if (refused !== undefined) for (const n of infinite) if (n.text !== undefined) n.holder[n.key] = n.text
  const ok = refused === undefined ? valid : validate(data)
  const problems = ok ? [] : explain(validate.errors ?? [], data)
  for (const r of refused ?? []) {
    r.holder[r.key] = r.value
    const note = `${writtenText(r.holder, r.key) ?? String(r.value)} is a ${typeof r.value}, never read as ${typeof r.value === 'number' ? 'true or false' : 'a number'}`
    noteAt(problems, r.path, note, note)
  }
  // Ajv coerces "Infinity", "1e309" or "-1e400" to ±Infinity, and its minimum and maximum let a
  // number that is not finite pass: a port, a timeout or a pool size that crashed start or hung requests.
  for (const n of infinite) {
    const now = n.holder[n.key]
    if (typeof now !== 'number' || Number.isFinite(now)) continue
    const text = n.text ?? writtenText(n.holder, n.key) ?? String(n.value)
    const reading = `not ${text}${text === String(now) ? '' : `, read as ${now}`}`
    // A number written so (1e309) that validation left as it was is in a part the schema does not
    // read (a plugin's config, validated on its own): only a problem found there is explained.
    noteAt(problems, n.path, `a finite number, ${reading}`, n.text !== undefined || n.rewritten === true ? `must be a finite number, ${reading}` : undefined)
  }
  return problems
}

/** Adds ` (note)` to the value problems at `path`; when there is none, adds `alone` as one (if given). */
function noteAt (problems: SchemaProblem[], path: KeyPath, note: string, alone?: string): void {
  const at = formatPath(path)
  const there = problems.filter(p => p.at === 'value' && formatPath(p.path) === at)
  for (const p of there) p.message += ` (${note})`
  if (there.length === 0 && alone !== undefined) problems.push({ path, at: 'value', message: alone })
}

/**
 * A scalar in the data to validate: where it is, and its value before Ajv coerced it. `text`: a
 * string's; `rewritten`: settle put the number's text as written in its place.
 */
interface Leaf { holder: Record<string | number, unknown>, key: string | number, path: KeyPath, value: unknown, text?: string, rewritten?: true }
/** A number or boolean. */
type Typed = Leaf & { value: number | boolean }

/**
 * The data's numbers and booleans, read before validation coerces them; and the leaves that are,
 * or that Ajv would coerce to, a number that is not finite (YAML's 1e309, the string "Infinity").
 */
function leaves (data: unknown): { typed: Typed[], infinite: Leaf[] } {
  const typed: Typed[] = []
  const infinite: Leaf[] = []
  const path: Array<string | number> = []
  const walk = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return
    const holder = node as Record<string | number, unknown>
    const keys: Array<string | number> = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node)
    for (const key of keys) {
      const value = holder[key]
      path.push(key)
      if (typeof value === 'number' || typeof value === 'boolean') {
        const leaf = { holder, key, path: [...path], value }
        typed.push(leaf)
        if (typeof value === 'number' && !Number.isFinite(value)) infinite.push(leaf)
      } else if (typeof value === 'string') {
        // Ajv coerces a string when `value == +value`: never to NaN.
        if (Math.abs(Number(value)) === Infinity) infinite.push({ holder, key, path: [...path], value, text: value })
      } else walk(value)
      path.pop()
    }
  }
  walk(data)
  return { typed, infinite }
}

/** Stands for a value refused (a number coerced to a boolean, or the reverse): no type accepts it, none can be coerced from it. */
const REFUSED = Symbol('refused')

/**
 * Undoes what Ajv's coercion made of numbers and booleans, meant for strings only (${VAR}s, quoted
 * values). Where it made a string, the value's text as written in the file (x-version: 1.10 is
 * "1.10", not "1.1"); where a boolean from a number (trustProxy: 1 read as true) or the reverse
 * (port: true read as 1), REFUSED in its place, to fail validation. Undefined: nothing changed
 * (the value of the first validation stands); else the refused, the data to be validated again.
 * (A union whose boolean branch comes before a number branch would refuse 1, which Ajv makes true in
 * the first branch: none of the built-in schemas is so; put the number first.)
 */
function settle (typed: Typed[]): Typed[] | undefined {
  let again = false
  const refused: Typed[] = []
  for (const t of typed) {
    const now = t.holder[t.key]
    if (typeof now === typeof t.value) continue
    if (typeof now !== 'string') {
      t.holder[t.key] = REFUSED
      refused.push(t)
      again = true
      continue
    }
    const text = writtenText(t.holder, t.key)
    if (text !== undefined && text !== now) { t.holder[t.key] = text; t.rewritten = true; again = true }
  }
  return again ? refused : undefined
}

function explain (errors: ErrorObject[], data: unknown): SchemaProblem[] {
  // An anyOf reports each branch's failure as well; keep only the anyOf's own message, except when
  // the value is an object and just one branch is: then that branch's errors (say, a mistyped key) say more.
  const unions = errors.filter(e => e.keyword === 'anyOf').map(u => ({ u, branch: objectBranch(u) }))
  const within = (e: ErrorObject, u: ErrorObject) => e.schemaPath.startsWith(u.schemaPath + '/') &&
    (e.instancePath === u.instancePath || e.instancePath.startsWith(u.instancePath + '/'))
  const kept = errors.filter(e => unions.every(({ u, branch }) =>
    e === u ? branch === undefined : !within(e, u) || (branch !== undefined && e.schemaPath.startsWith(branch))))
  const seen = new Set<string>()
  const out: SchemaProblem[] = []
  for (const e of kept) {
    const p = problem(e, toKeyPath(e.instancePath, data))
    const id = JSON.stringify(p)
    if (!seen.has(id)) { seen.add(id); out.push(p) }
  }
  return mergeMeant(out)
}

interface PropertySchema { properties?: Record<string, PropertySchema>, items?: PropertySchema, required?: string[] }

/**
 * An extra key's problem, saying what it seems meant as: a key of the one object (or list of
 * objects) beside it that has it (`cert` beside `certificates`), else a key beside it it is a typo of.
 */
function unknownKey (path: KeyPath, properties: Record<string, PropertySchema>): SchemaProblem {
  const key = path[path.length - 1] as string
  const unknown = `unknown key ${quoteKey(key)}`
  // `path:` beside a route's name is match's own key, not a misspelt `match`.
  const holders = Object.entries(properties).filter(([, s]) => (s.items ?? s).properties?.[key] !== undefined)
  const typo = holders.length === 1 ? undefined : nearest(key, Object.keys(properties))
  if (typo !== undefined) return { path, at: 'key', message: `${unknown} (did you mean "${typo}"?)`, unknownKey: true, meant: typo }
  if (holders.length !== 1) return { path, at: 'key', message: unknown, unknownKey: true }
  const [name, holder] = holders[0] as [string, PropertySchema]
  const object = holder.items ?? holder
  const keys = [...new Set([...(object.required ?? []), key])].map(k => `${k}: ...`).join(', ')
  const shape = holder.items === undefined ? `{ ${keys} }` : `[ { ${keys} } ]`
  return { path, at: 'key', message: `${unknown} (it goes under "${name}": ${name}: ${shape})`, unknownKey: true, meant: name }
}

/**
 * A key written wrong shows up twice when the key it was meant as is required: missing, and unknown
 * beside it. Said once, at the key written; so are other keys meant to go under the same missing key
 * (`server.tls: { cert, key }`). The shape is unsound then: no longer an unknownKey.
 */
function mergeMeant (problems: SchemaProblem[]): SchemaProblem[] {
  const id = (path: KeyPath, key: string): string => JSON.stringify([formatPath(path), key])
  const missing = new Map<string, SchemaProblem>()
  for (const p of problems) {
    const key = /^missing required key "(.*)"$/.exec(p.message)?.[1]
    if (key !== undefined) missing.set(id(p.path, key), p)
  }
  const merged = new Map<SchemaProblem, SchemaProblem | undefined>()
  for (const p of problems) {
    if (p.meant === undefined) continue
    const parent = missing.get(id(p.path.slice(0, -1), p.meant))
    if (parent === undefined) continue
    if (merged.has(parent)) {
      // A second typo of the same key is said as it is; a second key meant to go under it, not again.
      if (p.message.includes(' (it goes under ')) merged.set(p, undefined)
      continue
    }
    merged.set(parent, undefined)
    merged.set(p, { path: p.path, at: p.at, message: p.message })
  }
  return problems.flatMap(p => merged.has(p) ? merged.get(p) ?? [] : [p])
}

/**
 * The schema path prefix of the anyOf branch an object value means: the only object branch, or the
 * one whose constant property (a store's `type`) the value has.
 */
function objectBranch (u: ErrorObject): string | undefined {
  if (typeof u.data !== 'object' || u.data === null || Array.isArray(u.data)) return undefined
  const branches = u.schema as Array<{ type?: string, properties?: Record<string, { const?: unknown }> }>
  const objects = branches.flatMap((b, i) => b.type === 'object' ? [i] : [])
  const data = u.data as Record<string, unknown>
  const named = objects.length === 1 ? objects : objects.filter(i =>
    Object.entries(branches[i]?.properties ?? {}).some(([k, p]) => p.const !== undefined && data[k] === p.const))
  return named.length === 1 ? `${u.schemaPath}/${named[0]}/` : undefined
}

function problem (e: ErrorObject, path: KeyPath): SchemaProblem {
  const parent = e.parentSchema as Explained | undefined
  const custom = parent?.explain === undefined ? parent?.errorMessage : EXPLAIN[parent.explain]?.(e.data, parent)
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty
      const parent = e.parentSchema as { properties?: Record<string, PropertySchema>, patternProperties?: unknown }
      if (parent.patternProperties !== undefined) return { path: [...path, key], at: 'key', message: `"${printableKey(key)}" ${custom ?? 'is not a valid name (letters, digits, _ . -)'}` }
      return unknownKey([...path, key], parent.properties ?? {})
    }
    case 'unevaluatedProperties': {
      // Type.Intersect([A, B], { unevaluatedProperties: false }): a key none of its parts has.
      const key = (e.params as { unevaluatedProperty: string }).unevaluatedProperty
      const parts = (e.parentSchema as { allOf?: Array<{ properties?: Record<string, unknown> }> }).allOf ?? []
      return { path: [...path, key], at: 'key', message: `unknown key ${quoteKey(key)}${didYouMean(key, parts.flatMap(p => Object.keys(p.properties ?? {})))}`, unknownKey: true }
    }
    case 'required':
      return { path, at: 'key', message: `missing required key "${(e.params as { missingProperty: string }).missingProperty}"` }
    case 'type':
      return { path, at: 'value', message: `must be ${article((e.params as { type: string }).type)}` }
    case 'pattern':
    case 'anyOf':
      return { path, at: 'value', message: custom ?? (e.keyword === 'pattern' ? `must match ${(e.params as { pattern: string }).pattern}` : 'has an invalid value') }
    case 'const':
      return { path, at: 'value', message: `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` }
    default:
      return { path, at: 'value', message: custom ?? e.message ?? 'is invalid' }
  }
}

function article (type: string): string {
  return (/^[aeiou]/.test(type) ? 'an ' : 'a ') + type
}

function toKeyPath (pointer: string, data: unknown): KeyPath {
  if (pointer === '') return []
  const out: Array<string | number> = []
  let node = data
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    const key = Array.isArray(node) ? Number(seg) : seg
    out.push(key)
    node = (node as Record<string | number, unknown> | undefined)?.[key]
  }
  return out
}
