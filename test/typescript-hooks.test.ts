import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, runNode, type Run } from './helpers/run-cli.ts'

// The hooks that run the sources on Nodes without type stripping (Node 20 in CI), registered
// directly so that they are what loads the file on any Node. A source edited after it was cached
// must never run as it was: every later test would run stale code.
t.test('typescript hooks: a cached source compiled again once changed; stack lines of the .ts file', async t => {
  const dir = mkdtempSync(join(ROOT, 'test', '.hooks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'answer.ts')
  const cached = (): string => readFileSync(join(ROOT, 'node_modules/.cache/portcullis-tests', createHash('sha1').update(file).digest('hex') + '.js'), 'utf8')
  const hooks = pathToFileURL(join(ROOT, 'test/helpers/typescript-hooks.mjs')).href
  const run = (): Promise<Run> => runNode(['--enable-source-maps', '--input-type=module', '-e', `
    import { register } from 'node:module'
    register(${JSON.stringify(hooks)})
    const m = await import(${JSON.stringify(pathToFileURL(file).href)})
    console.log(m.answer)
    m.fail()`])
  const source = (answer: number): string => `interface Answer {\n  value: number\n}\nexport const answer: Answer['value'] = ${answer}\n\nexport function fail (): never {\n  throw new Error('line 7')\n}\n`

  writeFileSync(file, source(41))
  const first = await run()
  t.equal(first.stdout, '41\n')
  t.match(first.stderr, `${file}:7:`, 'the stack names the line in the .ts file')
  t.match(cached(), 'answer = 41', 'cached')
  t.equal((await run()).stdout, '41\n', 'from the cache')
  writeFileSync(file, source(42))
  t.equal((await run()).stdout, '42\n', 'the edit, not the cached output')
  t.match(cached(), 'answer = 42', 'cached again')
  writeFileSync(file, source(41))
  t.equal((await run()).stdout, '41\n', 'and back')
})
