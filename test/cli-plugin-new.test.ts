import t from 'tap'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runNode } from './helpers/run-cli.ts'

// What a plugin author does first, with the compiled CLI, in a directory outside the repository.
t.test('plugin new writes a plugin whose own test passes through a real gateway', async t => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-scaffold-'))
  const made = await runNode([join(process.cwd(), 'dist/src/cli/main.js'), 'plugin', 'new', 'add-stamp'], { cwd })
  t.equal(made.code, 0, made.stderr)
  t.same(readdirSync(join(cwd, 'plugins', 'add-stamp')).sort(), ['add-stamp.test.ts', 'index.ts', 'schema.ts'])
  t.match(made.stdout, /^ {2}loadPlugins: \[\.\/plugins\/add-stamp\/index\.ts\]$/m)
  const command = /^ {2}node (--import \S+ --test \S+)$/m.exec(made.stdout)?.[1]
  t.ok(command, 'it prints how to run the test')
  const tested = await runNode((command ?? '').split(' '), { cwd })
  t.equal(tested.code, 0, tested.stdout + tested.stderr)
  // Node's default test reporter: TAP when stdout is not a terminal up to Node 22, spec from Node 23 on.
  t.match(tested.stdout, /^(# |ℹ )pass 1$/m, 'one test passed')

  const again = await runNode([join(process.cwd(), 'dist/src/cli/main.js'), 'plugin', 'new', 'add-stamp'], { cwd })
  t.equal(again.code, 1, 'an existing folder is not overwritten')
  const bad = await runNode([join(process.cwd(), 'dist/src/cli/main.js'), 'plugin', 'new', 'Add_Stamp'], { cwd })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /plugin name "Add_Stamp" must be lower-case letters, digits and dashes/)
})
