import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const INDEX = new URL('../../src/index.ts', import.meta.url).href
const KEY = (name: string) => Symbol.for(`portcullis.test.shared.${name}`)

/** A value the test shares with the plugins it writes: they reach it as `shared(name)`. */
export function sharedWithPlugins<T> (name: string, value: T): T {
  (globalThis as Record<symbol, unknown>)[KEY(name)] = value
  return value
}

/**
 * Writes `<dir>/<name>.ts`, a user plugin named `name` with no config whose setup returns `hooks`
 * (source text of an object literal, which may call `shared(name)`).
 */
export function writeUserPlugin (dir: string, name: string, priority: number, hooks: string): string {
  const file = join(dir, `${name}.ts`)
  writeFileSync(file, `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
const shared = (name: string): any => (globalThis as any)[Symbol.for('portcullis.test.shared.' + name)]
export default definePlugin({ name: ${JSON.stringify(name)}, priority: ${priority}, schema: Type.Object({}), setup: () => (${hooks}) })
`)
  return file
}
