import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCliHere } from './helpers/run-cli.ts'

t.test('an unknown option: one line of ours and the command\'s usage, exit 2 (it was parseArgs\'s text: an open quote, advice about --)', async t => {
  const bogus = await runCliHere('validate', '--bogus')
  t.same([bogus.code, bogus.stdout, bogus.stderr.split('\n')[0]], [2, '', 'unknown option "--bogus"'])
  t.match(bogus.stderr, /^Usage: portcullis validate/m, 'with the usage')
  t.notMatch(bogus.stderr, /--'|positional/, 'no advice about --')
  const typo = await runCliHere('explain', '--headr', 'x: y', 'GET', '/')
  t.same([typo.code, typo.stderr.split('\n')[0]], [2, 'unknown option "--headr" (did you mean "--header"?)'])
  const short = await runCliHere('routes', '-x')
  t.same([short.code, short.stderr.split('\n')[0]], [2, 'unknown option "-x"'], 'no guess for one letter')
})

t.test('healthcheck with PORTCULLIS_STATE_FILE naming a directory says so (it said no gateway had started)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-state-'))
  const saved = process.env.PORTCULLIS_STATE_FILE
  process.env.PORTCULLIS_STATE_FILE = dir
  t.teardown(() => {
    if (saved === undefined) delete process.env.PORTCULLIS_STATE_FILE
    else process.env.PORTCULLIS_STATE_FILE = saved
    rmSync(dir, { recursive: true, force: true })
  })
  const run = await runCliHere('healthcheck')
  t.same([run.code, run.stderr], [1, `${dir}: a directory, not a file (PORTCULLIS_STATE_FILE names the file "portcullis start" writes)\n`])
  process.env.PORTCULLIS_STATE_FILE = join(dir, 'state.json')
  const none = await runCliHere('healthcheck')
  t.same([none.code, none.stderr], [1, `${join(dir, 'state.json')}: no gateway has started\n`], 'a missing file: no gateway has started')
})

t.test('the CLI\'s --help says what healthcheck checks, as its own --help does: /healthz with an admin listener', async t => {
  const main = await runCliHere('--help')
  t.match(main.stdout, /^ {2}healthcheck +.*\/healthz.*admin listener.*accepts connections/m)
})

// A config validate accepts may still fail at start: a plugin's setup (a file it reads) is not run by validate.
t.test('validate --help says plugins\' setup runs only at start and reload', async t => {
  const help = await runCliHere('validate', '--help')
  t.match(help.stdout.replace(/\s+/g, ' '), "Plugins' setup (run once per route, as the gateway builds its routes) runs only at start and on reload, not here")
})

t.test('help COMMAND prints the command\'s own help, as COMMAND --help does (it printed the general usage)', async t => {
  const help = await runCliHere('help', 'validate')
  const own = await runCliHere('validate', '--help')
  t.same([help.code, help.stdout], [0, own.stdout])
  t.match(help.stdout, /^Usage: portcullis validate/)
  const unknown = await runCliHere('help', 'valdate')
  t.same([unknown.code, unknown.stderr.split('\n')[0]], [2, 'portcullis: unknown command "valdate" (did you mean "validate"?)'], 'an unknown one as an unknown command')
})
