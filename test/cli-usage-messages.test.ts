import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, runCli, runCliHere, runNode } from './helpers/run-cli.ts'

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

t.test('--version, -v and version print package.json\'s version, from the sources and from dist/ (there was no such option)', async t => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  for (const arg of ['--version', '-v', 'version']) {
    const run = await runCli(arg)
    t.same([run.code, run.stdout, run.stderr], [0, `${version}\n`, ''], arg)
  }
  // The build's main.js is a folder deeper than main.ts (npm ci builds it).
  const built = await runNode(['dist/src/cli/main.js', '--version'])
  t.same([built.code, built.stdout], [0, `${version}\n`], 'dist/src/cli/main.js --version')
})

t.test('portcullis with no command: the usage on stderr, exit 2 (it exited 0); --help and help still exit 0 on stdout', async t => {
  const none = await runCli()
  t.same([none.code, none.stdout], [2, ''])
  t.match(none.stderr, /^portcullis: no command given\n\nportcullis: a self-hosted API gateway\n\nUsage: portcullis <command> \[options\]$/m)
  for (const arg of ['--help', '-h', 'help']) {
    const help = await runCliHere(arg)
    t.same([help.code, help.stderr], [0, ''], arg)
    t.match(help.stdout, /^Usage: portcullis <command> \[options\]$/m, arg)
  }
})

t.test('plugin without a subcommand, or an unknown one: an error line naming it, with a did-you-mean, exit 2 (it printed the usage alone)', async t => {
  const cases: Array<[string[], string]> = [
    [['plugin'], 'a subcommand is needed: new'],
    [['plugin', 'neww', 'x'], 'unknown subcommand "neww" (did you mean "new"?)'],
    [['plugin', 'frobnicate'], 'unknown subcommand "frobnicate"'],
    [['plugin', 'new'], 'plugin new needs a NAME']
  ]
  for (const [args, line] of cases) {
    const run = await runCliHere(...args)
    t.same([run.code, run.stdout, run.stderr.split('\n')[0]], [2, '', line], args.join(' '))
    t.match(run.stderr, /^Usage: portcullis plugin new NAME/m, 'with the usage')
  }
})

t.test('hash-password: an unknown option in our words with a did-you-mean, as other commands say it (it was parseArgs\'s text)', async t => {
  const run = await runCliHere('hash-password', '--cots', '12')
  t.same([run.code, run.stdout, run.stderr.split('\n')[0]], [2, '', 'unknown option "--cots" (did you mean "--cost"?)'])
  t.match(run.stderr, /^Usage: portcullis hash-password/m)
  const extra = await runCliHere('hash-password', 'hunter2')
  t.same([extra.code, extra.stderr.split('\n')[0]], [2, 'unexpected argument "hunter2"'])
})

t.test('--watch=false points to --no-watch; --watch says it is the default', async t => {
  const off = await runCliHere('start', '--watch=false')
  t.same([off.code, off.stderr.split('\n')[0]], [2, 'unknown option "--watch" (did you mean "--no-watch"?)'])
  const on = await runCliHere('start', '--watch')
  t.same([on.code, on.stderr.split('\n')[0]], [2, 'unknown option "--watch" (it is on by default; "--no-watch" turns it off)'])
})

t.test('the help texts name -c, --config (it worked, but no help said so)', async t => {
  const main = await runCliHere('--help')
  t.match(main.stdout, /^ {2}-c, --config FILE {2}/m)
  const reading: Array<[string, string]> = [['start', 'config/gateway.yaml'], ['validate', 'config/gateway.yaml'],
    ['routes', 'config/gateway.yaml'], ['explain', 'config/gateway.yaml'], ['demo', 'config/demo.yaml']]
  for (const [command, file] of reading) {
    const help = await runCliHere(command, '--help')
    t.match(help.stdout, `\n-c, --config FILE   the config file (default ${file})\n`, command)
  }
  for (const command of ['schema', 'healthcheck', 'hash-password']) {
    t.notMatch((await runCliHere(command, '--help')).stdout, '--config', `${command} reads no config`)
  }
  // It reads none either: its -c names the config its loadPlugins line is printed for.
  t.match((await runCliHere('plugin', '--help')).stdout, '\n-c, --config FILE   the config that will load it: the loadPlugins line is relative to its folder', 'plugin: no default')
})

t.test('the help lists each option its usage line names: start\'s --no-watch; the top-level help and version words', async t => {
  const start = await runCliHere('start', '--help')
  t.match(start.stdout, /^Usage: portcullis start \[-c FILE\] \[--no-watch\]$/m)
  t.match(start.stdout, /\n\n--no-watch {10}no reload when FILE .*\n-c, --config FILE {3}/, 'in the options list, with -c')
  const main = await runCliHere('--help')
  t.match(main.stdout, /^ {2}-h, --help {9}this text \(also: help\); a command's options: portcullis help <command>,$/m)
  t.match(main.stdout, /^ {2}-v, --version {6}print Portcullis's version \(also: version\)$/m)
  const word = await runCliHere('version')
  t.same([word.code, word.stdout], [0, (await runCliHere('--version')).stdout], 'version, as --version')
})
