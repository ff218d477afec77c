import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, ROOT, runNode } from './helpers/run-cli.ts'

// The README's validate sample once came from no file it showed (routes[1], 11:46): a newcomer
// could not get it. It is the tour's config with the typos the sample names, and its real output.
t.test('the README\'s validate sample is what validate prints for the tour config with its typos', async t => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const tour = /## A tour[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1] as string
  const sample = /```\n\$ node dist\/src\/cli\/main\.js validate -c (\S+)\s+# the config above, saved with PSOT for POST and user for users\n([\s\S]*?)```/.exec(readme)
  t.ok(sample, 'the README has the sample')
  const [, file, output] = sample as RegExpExecArray
  const typos = tour.replace('methods: [GET, POST]', 'methods: [GET, PSOT]').replace('upstream: users', 'upstream: user')
  t.not(typos, tour)
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-tour-'))
  writeFileSync(join(cwd, file as string), typos)
  const run = await runNode([...CLI_FROM_SOURCES.map(a => a === 'src/cli/main.ts' ? join(ROOT, a) : a), 'validate', '-c', file as string], { cwd })
  t.equal(run.code, 1)
  t.equal(run.stdout + run.stderr, output)
})
