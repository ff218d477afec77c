import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, runNode } from './helpers/run-cli.ts'

// What a plugin author does first, with the compiled CLI, in a directory outside the repository.
t.test('plugin new writes a plugin whose own test passes through a real gateway', async t => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-scaffold-'))
  const made = await runNode([join(process.cwd(), 'dist/src/cli/main.js'), 'plugin', 'new', 'add-stamp'], { cwd })
  t.equal(made.code, 0, made.stderr)
  t.same(readdirSync(join(cwd, 'plugins', 'add-stamp')).sort(), ['add-stamp.test.ts', 'index.ts', 'package.json', 'schema.ts'])
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

// From a clone: the printed paths, a built-in's name refused, and a test command that works on every Node the sources run on.
t.test('plugin new from the sources: an absolute --dir stays absolute, a built-in name is refused, the test command runs', async t => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-scaffold-'))
  const cli = (...args: string[]) => runNode([...CLI_FROM_SOURCES.map(a => a === 'src/cli/main.ts' ? join(process.cwd(), a) : a), 'plugin', 'new', ...args], { cwd })
  const absolute = await cli('stamp', '--dir', join(cwd, 'mine'))
  t.equal(absolute.code, 0, absolute.stderr)
  t.match(absolute.stdout, new RegExp(`^ {2}loadPlugins: \\[${join(cwd, 'mine', 'stamp', 'index.ts')}\\]$`, 'm'), 'once "./" before an absolute path')
  const relative = await cli('other', '--dir', 'lib/plugins')
  t.match(relative.stdout, /^ {2}loadPlugins: \[\.\/lib\/plugins\/other\/index\.ts\]$/m)
  const command = /^ {2}node (.+ --test \S+)$/m.exec(absolute.stdout)?.[1]
  t.ok(command, 'it prints how to run the test')
  const tested = await runNode((command ?? '').split(' '), { cwd })
  t.equal(tested.code, 0, tested.stdout + tested.stderr)
  t.match(tested.stdout, /^(# |ℹ )pass 1$/m, 'one test passed')

  // tsc with the tsconfig docs/plugins.md shows (module NodeNext): the test's import.meta needs the folder's package.json.
  t.same(JSON.parse(readFileSync(join(cwd, 'mine', 'stamp', 'package.json'), 'utf8')), { type: 'module' })
  // The plugin's logger adds route and plugin itself: a route field in its log call is a second "route" in the line.
  t.notMatch(readFileSync(join(cwd, 'mine', 'stamp', 'index.ts'), 'utf8'), /log\.\w+\(\{[^}]*\b(route|plugin):/, 'no route field in its log call')
  t.match(absolute.stdout, /its package\.json, \{ "type": "module" \}, makes the\nfolder's \.ts files ES modules/)
  writeFileSync(join(cwd, 'mine', 'stamp', 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true,
      paths: { portcullis: [join(process.cwd(), 'dist/src/index.d.ts')] }
    },
    include: ['*.ts']
  }))
  const tsc = await runNode([join(process.cwd(), 'node_modules/typescript/bin/tsc'), '-p', join(cwd, 'mine', 'stamp')], { cwd })
  t.equal(tsc.code, 0, tsc.stdout + tsc.stderr)

  const builtin = await cli('cors')
  t.same([builtin.code, builtin.stderr], [2, 'plugin name "cors" is a built-in plugin\'s: choose another\n'])
  t.notOk(existsSync(join(cwd, 'plugins', 'cors')), 'nothing written')
})
