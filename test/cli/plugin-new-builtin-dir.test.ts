import t from 'tap'
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, ROOT, runNode } from '../helpers/run-cli.ts'

// In a clone, ./plugins is the built-in plugins' folder: a plugin written there became a built-in
// at the next build (loadPlugins then refused it), and a half-written one failed every command.
t.test('plugin new refuses the package\'s own plugins/ folder, however it is named', async t => {
  const name = 'zz-scaffold-probe'
  t.teardown(() => rmSync(join(ROOT, 'plugins', name), { recursive: true, force: true }))
  const tmp = mkdtempSync(join(tmpdir(), 'portcullis-scaffold-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  const link = join(tmp, 'link')
  symlinkSync(join(ROOT, 'plugins'), link)
  const cli = (cwd: string, ...args: string[]) => runNode([...CLI_FROM_SOURCES.map(a => a === 'src/cli/main.ts' ? join(ROOT, a) : a), 'plugin', 'new', name, ...args], { cwd })
  for (const [cwd, args] of [[ROOT, []], [join(ROOT, 'plugins'), ['--dir', '.']], [tmpdir(), ['--dir', link]]] as const) {
    const made = await cli(cwd, ...args)
    t.equal(made.code, 2, `from ${cwd} ${args.join(' ')}`)
    t.match(made.stderr, `${join(ROOT, 'plugins')}/ is Portcullis's own folder of built-in plugins, nothing written: write yours elsewhere with --dir`)
    t.notOk(existsSync(join(ROOT, 'plugins', name)), 'nothing written')
  }
})
